# A CPU spin on many threads and processes. Under a cgroup the CPU
# bandwidth cap holds it to half a CPU (not a verdict here: the runner
# checks the host stays responsive); the wall clock ends it.
# config: timeout=2s cpus=0.5
# soak: no
# expect: reason=timeout
brig_jailed()
import threading
def spin():
    while True: pass
for _ in range(3):
    if os.fork() == 0:
        break
for _ in range(8):
    threading.Thread(target=spin, daemon=True).start()
spin()
