# nsjail's SysV shm DoS: segments are not freed when their creator exits,
# so a jail that leaves them behind keeps the memory. In its own IPC
# namespace they die with the namespace; the runner checks the host has
# no new segment afterwards.
# config: timeout=20s
# expect: reason=exited exit=0
# expect: stdout-matches=^segments [1-9][0-9]*$
# expect: stdout-contains=DONE
brig_jailed()
_libc.shmget.restype = ctypes.c_int
_libc.shmat.restype = ctypes.c_void_p
made = 0
for i in range(64):
    sid = _libc.shmget(0x1000 + i, 4 << 20, 0o1000 | 0o666)  # IPC_CREAT
    if sid < 0:
        break
    a = _libc.shmat(sid, None, 0)
    if a not in (None, ctypes.c_void_p(-1).value):
        ctypes.memset(a, 0x41, 4 << 20)   # touch the pages: real memory
        _libc.shmdt(ctypes.c_void_p(a))
    made += 1
print("segments", made)
# Also ask the kernel to keep orphans around.
print("rmid_forced", open("/proc/sys/kernel/shm_rmid_forced").read().strip())
print("DONE")
