# SysV message queues pin unreclaimable kernel memory that no address
# space counts. A memory cgroup charges it; the rlimit fallback did not,
# and the kernel's per-namespace defaults (32000 queues of 16 KiB) let one
# jail hold 500 MiB of text, and 64 times that in headers of empty
# messages. The jail's own limits (kernel.msgmni from its memory limit,
# set by init in its IPC namespace) stop it at a quarter of the memory
# limit. The payload stops itself at twice the memory limit.
# config: memory=128M timeout=30s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-matches=^msgq stopped at [0-9]+ queues [0-9]+ MiB (ENOSPC|EAGAIN)$
brig_jailed()
import time
CAP = 256 << 20
_libc.msgget.restype = ctypes.c_int
_libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
msgmax = int(open("/proc/sys/kernel/msgmax").read())
buf = ctypes.create_string_buffer(8 + msgmax)
ctypes.c_long.from_buffer(buf).value = 1  # mtype
queues, held, err = 0, 0, ""
while held < CAP:
    q = _libc.msgget(0, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if q < 0:
        err = errno.errorcode[ctypes.get_errno()]
        break
    queues += 1
    while _libc.msgsnd(q, buf, msgmax, 0o4000) == 0:  # IPC_NOWAIT
        held += msgmax + 64
if held >= CAP:
    print("msgq reached the cap: %d queues %d MiB" % (queues, held >> 20), flush=True)
else:
    print("msgq stopped at %d queues %d MiB %s" % (queues, held >> 20, err), flush=True)
time.sleep(1)
