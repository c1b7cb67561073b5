# A CPU spin on many threads in several processes. Under a cgroup the CPU
# bandwidth cap holds it to half a CPU (not a verdict here: the runner
# checks the host stays responsive); the wall clock ends it.
# config: timeout=2s cpus=0.5
# soak: no
# expect: reason=timeout
brig_jailed()
import threading
def spin():
    while True: pass
os.fork()  # two processes of four spinning threads: four times this host's cores
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
spin()
