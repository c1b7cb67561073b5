# The host's SysV shm segment (world-readable and writable, so only the
# IPC namespace protects it) must be invisible: by key, by id, and in
# /proc/sysvipc. Its content is the host's secret, which the runner looks
# for in the output.
# expect: reason=exited exit=0
# expect: stdout-contains=shmget key ENOENT
# expect: stdout-matches=^shmat id (EINVAL|EIDRM)$
# expect: stdout-matches=^shmctl id (EINVAL|EIDRM)$
# expect: stdout-contains=host segments visible 0
# expect: stdout-contains=DONE
brig_jailed()
key, sid = int(os.environ["BAIT_SHM_KEY"]), int(os.environ["BAIT_SHM_ID"])
_libc.shmget.restype = ctypes.c_int
_libc.shmat.restype = ctypes.c_void_p
def shmget():
    r = _libc.shmget(key, 0, 0)
    if r < 0: e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return r
def shmat():
    r = _libc.shmat(sid, None, 0o10000)  # SHM_RDONLY
    if r in (None, ctypes.c_void_p(-1).value): e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    print("LEAK", ctypes.string_at(r, 40)); return r
def shmctl():
    b = ctypes.create_string_buffer(256)
    r = _libc.shmctl(sid, 2, b)  # IPC_STAT
    if r < 0: e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
probe("shmget key", shmget)
probe("shmat id", shmat)
probe("shmctl id", shmctl)
probe("shmctl rmid", lambda: (_ for _ in ()).throw(OSError(errno.EINVAL, "")) if _libc.shmctl(sid, 0, None) < 0 else None)
lines = open("/proc/sysvipc/shm").read().splitlines()[1:]
print("host segments visible", sum(1 for l in lines if l.split()[0] == str(key) or l.split()[1] == str(sid)))
print("DONE")
