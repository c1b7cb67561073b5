# A short fork bomb for the soak: fork until refused, report, exit. The
# refusal must come from the jail's pids limit, well below the host's.
# config: timeout=10s pids=32
# expect: reason=exited exit=0
# expect: stdout-matches=^refused after ([0-9]|[12][0-9]|3[0-2]) forks EAGAIN$
brig_jailed()
import signal, time
kids = []
try:
    while len(kids) < 1000:
        pid = os.fork()
        if pid == 0:
            time.sleep(30); os._exit(0)
        kids.append(pid)
    print("never refused")
except OSError as e:
    print("refused after", len(kids), "forks", ename(e))
for k in kids: os.kill(k, signal.SIGKILL)
for k in kids: os.waitpid(k, 0)
