# epoll watches are kernel memory in no address space. A memory cgroup
# charges them (OOM at the limit). Without one they are bounded only per
# user (fs.epoll.max_user_watches, about 4% of the host's memory in
# watches): per jail when the supervisor is root (each jail has its own
# uid), shared with the caller's other processes when it is not. No rlimit
# bounds them: a watch is keyed by file and fd number, so a handful of fds
# make millions. The payload stops itself at twice the memory limit.
# config: memory=128M timeout=60s
# soak: no
# limit[rlimit]: epoll watches are counted only per user (fs.epoll.max_user_watches), not against the memory limit
# expect: reason=oom
brig_jailed()
import select, time
CAP, WATCH = 256 << 20, 200  # bytes of kernel memory per watch, about
import resource
_, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
targets = [os.eventfd(0) for _ in range(32)]
spare = list(range(nofile // 2, nofile - 8))  # fd numbers the watches are keyed by
eps, held, err = [], 0, ""
try:
    while held < CAP and len(eps) < nofile // 2 - 48:
        ep = select.epoll()
        eps.append(ep)
        for t in targets:
            for k in spare:
                os.dup2(t, k)
                ep.register(k, select.EPOLLIN)
                os.close(k)  # the watch stays: the file is still open as t
                held += WATCH
            if held >= CAP:
                break
except OSError as e:
    err = ename(e)
if held >= CAP:
    print("epoll reached the cap: %d watches" % (held // WATCH), flush=True)
else:
    print("epoll stopped at %d watches %s" % (held // WATCH, err), flush=True)
time.sleep(1)
