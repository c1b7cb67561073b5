# Pending signals, and POSIX timers (each holds one), are counted per user
# in the jail's user namespace and again for the namespace's owner on the
# host: root, or the unprivileged caller. A jail with the owner's own
# RLIMIT_SIGPENDING could take the owner's whole quota, and timer_create
# on the host failed with EAGAIN (the runner's probe creates a timer as
# root and as nobody every 150 ms). The jail's own small RLIMIT_SIGPENDING
# bounds its share. The payload stops itself at 200000 timers.
# config: timeout=30s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-matches=^timers stopped at [0-9]{1,4} EAGAIN$
brig_jailed()
import time
CAP = 200000
sev = ctypes.create_string_buffer(64)  # struct sigevent: SIGEV_SIGNAL, SIGURG; never armed
ctypes.c_int.from_buffer(sev, 8).value = 23
tid = ctypes.c_int()
n, err = 0, ""
while n < CAP:
    if _libc.timer_create(1, sev, ctypes.byref(tid)) != 0:  # CLOCK_MONOTONIC
        err = errno.errorcode[ctypes.get_errno()]
        break
    n += 1
if n >= CAP:
    print("timers reached the cap: %d" % n, flush=True)
else:
    print("timers stopped at %d %s" % (n, err), flush=True)
time.sleep(1.5)  # hold them while the host probes
