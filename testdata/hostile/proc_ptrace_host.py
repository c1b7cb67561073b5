# ptrace, process_vm_readv, /proc/PID/mem and pidfd_getfd against the
# host's bait and against the jail's own init must all fail.
# expect: reason=exited exit=0
# expect: stdout-contains=ptrace attach bait EPERM
# expect: stdout-contains=ptrace attach init EPERM
# expect: stdout-contains=ptrace traceme EPERM
# expect: stdout-contains=process_vm_readv init EPERM
# expect: stdout-contains=pidfd_getfd init EPERM
# expect: stdout-contains=mem init EACCES
# expect: stdout-contains=DONE
brig_jailed()
bait = int(os.environ["BAIT_PID"])
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206
probe("ptrace attach bait", lambda: sys_call(101, PTRACE_ATTACH, bait, 0, 0))
probe("ptrace seize bait", lambda: sys_call(101, PTRACE_SEIZE, bait, 0, 0))
probe("ptrace attach init", lambda: sys_call(101, PTRACE_ATTACH, 1, 0, 0))
probe("ptrace traceme", lambda: sys_call(101, PTRACE_TRACEME, 0, 0, 0))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(64)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = iovec(0x400000, 64)
probe("process_vm_readv init", lambda: sys_call(310, 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
probe("process_vm_readv bait", lambda: sys_call(310, bait, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
def getfd():
    pfd = os.pidfd_open(1)
    try: sys_call(438, pfd, 0, 0)
    finally: os.close(pfd)
probe("pidfd_getfd init", getfd)
probe("mem init", lambda: open("/proc/1/mem", "rb").read(1) and None)
# A sibling under the same uid: ptrace is refused by seccomp, not by uid.
import subprocess
c = subprocess.Popen(["sleep", "5"])
probe("ptrace attach own child", lambda: sys_call(101, PTRACE_ATTACH, c.pid, 0, 0))
c.kill(); c.wait()
print("DONE")
