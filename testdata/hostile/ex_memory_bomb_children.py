# Memory spread over many processes, each below any per-process bound:
# the memory cgroup counts them together and the OOM killer kills children
# (SIGKILL: exit code -9); the parent itself lives on and exits 0, so the
# result's reason is exited (its oom_kills counts the kills).
# RLIMIT_AS is per process, so the rlimit fallback lets 8 x 96M through.
# config: timeout=20s memory=128M pids=32
# soak: no
# limit[rlimit]: RLIMIT_AS is per process (documented in cgroup/rlimit.go): 8 children x 96M pass a 128M limit
# expect: reason=exited exit=0
# expect[cgroup]: stdout-matches=^codes .*-9
brig_jailed()
import time
kids = []
for i in range(8):
    pid = os.fork()
    if pid == 0:
        try:
            b = bytearray(96 << 20)
            for j in range(0, len(b), 4096): b[j] = 1
            time.sleep(2)
            os._exit(0)
        except MemoryError:
            os._exit(3)
    kids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]
print("codes", codes)
print("children done")
