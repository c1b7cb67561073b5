# A Python fork bomb that never gives up: the pids limit holds it, the
# wall clock ends it, the host stays responsive (the runner probes it).
# config: timeout=3s pids=64
# soak: no
# expect: reason=timeout
brig_jailed()
import time
while True:
    try:
        if os.fork() == 0:
            while True:
                try: os.fork()
                except OSError: time.sleep(0.01)
    except OSError:
        time.sleep(0.01)
