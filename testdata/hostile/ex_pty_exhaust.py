# Pseudo-terminals: kernel.pty.max is one pool for every devpts instance
# but the host's own reserve. Four processes open ptys until refused: the
# jail's devpts must stop them at its own cap (64), leaving the pool to
# other jails and containers.
# config: timeout=20s
# expect: reason=exited exit=0
# expect: stdout-contains=first pty works
# expect: stdout-matches=^total ptys ([0-9]|[1-5][0-9]|6[0-4])$
brig_jailed()
import pty
m, s = pty.openpty(); print("first pty works", flush=True); os.close(m); os.close(s)
r, w = os.pipe()
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fds = []
        try:
            while len(fds) < 900:
                fds.append(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))
        except OSError:
            pass
        os.write(w, b"%d\n" % len(fds))
        import time; time.sleep(0.5)
        os._exit(0)
    kids.append(pid)
os.close(w)
for k in kids: os.waitpid(k, 0)
counts = [int(x) for x in os.read(r, 1000).split()]
print("total ptys", sum(counts))
