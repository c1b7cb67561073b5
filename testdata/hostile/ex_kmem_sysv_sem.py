# SysV semaphore arrays pin kernel memory (a cache line per semaphore) that
# no address space counts. The kernel's per-namespace defaults allow 32000
# sets of 32000: gigabytes. The jail's own kernel.sem (from its memory
# limit, set by init in its IPC namespace) stops it at a small fraction of
# the memory limit. The payload stops itself at twice the memory limit.
# config: memory=128M timeout=30s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-matches=^sem stopped at [0-9]+ sets [0-9]+ MiB ENOSPC$
brig_jailed()
import time
CAP = 256 << 20
_libc.semget.restype = ctypes.c_int
nsems, sets, held, err = 32000, 0, 0, ""
while held < CAP:
    s = _libc.semget(0, nsems, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if s >= 0:
        sets += 1
        held += nsems * 64 + 256
        continue
    err = errno.errorcode[ctypes.get_errno()]
    if nsems == 1:
        break
    nsems = max(1, nsems // 4)  # EINVAL (over semmsl) or ENOSPC (semmns, semmni)
if held >= CAP:
    print("sem reached the cap: %d sets %d MiB" % (sets, held >> 20), flush=True)
else:
    print("sem stopped at %d sets %d MiB %s" % (sets, held >> 20, err), flush=True)
time.sleep(1)
