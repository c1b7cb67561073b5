# Pipe buffers are kernel memory in no address space. A memory cgroup
# charges them (OOM at the limit). Without one they are bounded per user:
# full buffers up to fs.pipe-user-pages-soft (64 MiB by default; per jail
# when the supervisor is root, shared with the caller when it is not),
# then two pages per pipe, and a process holds at most RLIMIT_NOFILE/2
# pipes (the rlimit fallback sizes it from the memory limit). 100
# processes each fill as many pipes as they can; together they stop at
# twice the memory limit.
# config: memory=128M timeout=60s
# soak: no
# limit[rlimit]: pipe buffers are counted per user (fs.pipe-user-pages-soft) and per process (RLIMIT_NOFILE), not against the jail's memory limit
# expect: reason=oom
brig_jailed()
import fcntl, time
CAP, PROCS = 256 << 20, 100
r, w = os.pipe()  # each child reports the bytes it holds
kids = []
for i in range(PROCS):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.close(r)
        pipes, held = [], 0
        try:
            while held < CAP // PROCS:
                a, b = os.pipe()
                pipes.append((a, b))
                try:
                    fcntl.fcntl(b, 1031, 1 << 20)  # F_SETPIPE_SZ: refused past the soft limit
                except OSError:
                    pass
                os.set_blocking(b, False)
                try:
                    while held < CAP // PROCS:
                        held += os.write(b, b"x" * 4096)  # a page per write
                except BlockingIOError:
                    pass
        except OSError:
            pass
        os.write(w, b"%d\n" % held)
        time.sleep(3)  # hold them while the others fill theirs
        os._exit(0)
    kids.append(pid)
os.close(w)
total = sum(int(x) for x in os.fdopen(r).read().split())
for pid in kids:
    os.waitpid(pid, 0)
print("pipes held %d MiB in %d processes" % (total >> 20, len(kids)), flush=True)
