# Exhaust file descriptors and threads: both stop at the jail's limits
# (RLIMIT_NOFILE 1024, the pids limit), with errors, not a hang.
# config: pids=64 timeout=20s
# expect: reason=exited exit=0
# expect: stdout-matches=^fds stopped EMFILE at 10[0-9][0-9]$
# expect: stdout-matches=^threads stopped at [0-9]+$
brig_jailed()
import threading, time
fds = []
try:
    while True: fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    print("fds stopped", ename(e), "at", len(fds) + 3)
for fd in fds: os.close(fd)
ev = threading.Event(); ts = []
try:
    while len(ts) < 10000:
        t = threading.Thread(target=ev.wait); t.start(); ts.append(t)
    print("threads unbounded")
except RuntimeError:
    print("threads stopped at", len(ts))
ev.set()
for t in ts: t.join()
