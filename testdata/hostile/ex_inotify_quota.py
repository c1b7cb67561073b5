# inotify instances and watches are counted per user, and at the host's
# level against the owner of the user namespace. The jail must not be
# able to use up a host user's quota (the runner's probe creates an
# inotify instance as root every 150 ms while this runs).
# config: timeout=10s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-matches=^instances stopped at [0-9]+
brig_jailed()
import time
_libc.inotify_init1.restype = ctypes.c_int
fds = []
while len(fds) < 1000:
    fd = _libc.inotify_init1(0)
    if fd < 0:
        print("instances stopped at", len(fds), os.strerror(ctypes.get_errno()), flush=True)
        break
    fds.append(fd)
else:
    print("instances unbounded", len(fds), flush=True)
time.sleep(1.5)  # hold them while the host probes
