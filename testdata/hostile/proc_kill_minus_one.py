# kill(-1, SIGKILL) signals every process the caller may signal. In a PID
# namespace that is the jail's own processes; the host's bait process (and
# any other jail) must survive, which the runner checks.
# expect: reason=exited exit=0
# expect: stdout-contains=child -9
# expect: stdout-contains=init alive True
brig_jailed()
import signal, subprocess
child = subprocess.Popen(["sleep", "30"])
os.kill(-1, signal.SIGKILL)  # Linux spares the caller and PID 1
print("child", child.wait())
print("init alive", os.path.exists("/proc/1"))
