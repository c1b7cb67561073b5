# A CPU-time budget over every process of the jail: eight spinning
# threads burn a one-second budget and the jail is stopped for it.
# config: timeout=20s cpu-time=1s cpus=2
# expect: reason=cpu_time
brig_jailed()
import threading
def spin():
    while True: pass
for _ in range(8):
    threading.Thread(target=spin, daemon=True).start()
spin()
