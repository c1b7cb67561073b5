# Detached SysV shared memory stays allocated and is in no address space.
# A memory cgroup charges it (OOM at the limit); the rlimit fallback did
# not, and the kernel's default kernel.shmall is unlimited. The jail's own
# shmall (half its memory limit, set by init in its IPC namespace) stops
# it. The payload stops itself at twice the memory limit.
# config: memory=128M timeout=30s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-matches=^shm stopped at [0-9]+ MiB ENOSPC$
brig_jailed()
import time
CAP, SEG = 256 << 20, 4 << 20
_libc.shmget.restype = ctypes.c_int
_libc.shmat.restype = ctypes.c_void_p
held, err = 0, ""
while held < CAP:
    sid = _libc.shmget(0, SEG, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if sid < 0:
        err = errno.errorcode[ctypes.get_errno()]
        break
    a = _libc.shmat(sid, None, 0)
    if a in (None, ctypes.c_void_p(-1).value):
        err = "shmat " + errno.errorcode[ctypes.get_errno()]
        break
    ctypes.memset(a, 0x41, SEG)  # real pages
    _libc.shmdt(ctypes.c_void_p(a))
    held += SEG
if held >= CAP:
    print("shm reached the cap: %d MiB" % (held >> 20), flush=True)
else:
    print("shm stopped at %d MiB %s" % (held >> 20, err), flush=True)
time.sleep(1)
