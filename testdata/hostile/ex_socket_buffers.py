# Kernel memory the program pins without mapping it: socket buffers. Four
# processes each fill as many unix socketpairs as RLIMIT_NOFILE allows
# (~125 MiB of skbs each, ~500 MiB together) against a 128M memory limit.
# The memory cgroup charges them and the OOM killer ends the jail; the
# rlimit fallback (RLIMIT_AS counts address space only) does not see them.
# config: memory=128M timeout=30s pids=16
# soak: no
# limit[rlimit]: RLIMIT_AS does not count socket buffers: ~125 MiB of host kernel memory per process past the memory limit (x the pids limit)
# expect: reason=oom
brig_jailed()
import socket, time
for _ in range(2):
    os.fork()
pairs = []
try:
    while True:
        a, b = socket.socketpair(); a.setblocking(False)
        try:
            while True: a.send(b"x" * 65536)
        except BlockingIOError:
            pass
        pairs.append((a, b))
except OSError as e:
    print("filled", len(pairs), "pairs", ename(e), flush=True)
time.sleep(1)
