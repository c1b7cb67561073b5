# memfd_create + write: in-memory files held by an fd are in no address
# space. A memory cgroup charges their pages (OOM at the limit). The
# rlimit fallback bounds each file (RLIMIT_FSIZE, the memory limit) and
# their number (RLIMIT_NOFILE, from the memory limit), but not their sum
# to anything near the memory limit. The payload stops itself at twice
# the memory limit.
# config: memory=128M timeout=30s
# soak: no
# limit[rlimit]: memfd pages are not counted by RLIMIT_AS; RLIMIT_FSIZE x RLIMIT_NOFILE bounds them per process, far above the memory limit
# expect: reason=oom
brig_jailed()
import signal, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead
CAP, CHUNK = 256 << 20, b"x" * (1 << 20)
fds, held, err = [], 0, ""
while held < CAP and not err:
    try:
        fd = os.memfd_create("fill")
    except OSError as e:
        err = ename(e)
        break
    fds.append(fd)
    while held < CAP:
        try:
            os.write(fd, CHUNK)
        except OSError as e:
            if e.errno != errno.EFBIG:
                err = ename(e)
            break
        held += len(CHUNK)
if held >= CAP:
    print("memfd reached the cap: %d files %d MiB" % (len(fds), held >> 20), flush=True)
else:
    print("memfd stopped at %d files %d MiB %s" % (len(fds), held >> 20, err), flush=True)
time.sleep(1)
