# Nested namespaces are the road to a fresh set of capabilities and to
# kernel code like fsconfig (CVE-2022-0185). Every way of asking for one
# must fail.
# expect: reason=exited exit=0
# expect: stdout-contains=unshare USER EPERM
# expect: stdout-contains=unshare NS EPERM
# expect: stdout-contains=unshare NET EPERM
# expect: stdout-contains=unshare CGROUP EPERM
# expect: stdout-contains=unshare PID EPERM
# expect: stdout-contains=setns EPERM
# expect: stdout-contains=unshare(1) fails
brig_jailed()
import subprocess
flags = {"USER": 0x10000000, "NS": 0x20000, "NET": 0x40000000, "CGROUP": 0x02000000, "PID": 0x20000000, "IPC": 0x08000000, "UTS": 0x04000000}
for n, f in flags.items():
    probe("unshare " + n, lambda f=f: sys_call(272, f))
def _setns():
    fd = os.open("/proc/self/ns/user", os.O_RDONLY)
    try: sys_call(308, fd, 0)
    finally: os.close(fd)
probe("setns", _setns)
if hasattr(os, "unshare"):
    probe("os.unshare USER", lambda: os.unshare(os.CLONE_NEWUSER))
r = subprocess.run(["unshare", "-Ur", "id"], capture_output=True, text=True)
print("unshare(1)", "fails" if r.returncode != 0 else "WORKED " + r.stdout.strip(), r.stderr.strip()[:80])
print("max_user_namespaces", open("/proc/sys/user/max_user_namespaces").read().strip())
