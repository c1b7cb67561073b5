# sync and syncfs write back every dirty page of a whole filesystem, the
# host's included: a jail calling them in a loop keeps the host's disks
# flushing for everyone. Nothing in a jail needs them, so the default
# policy refuses both (EPERM). sync(2) returns nothing in libc, so the
# sync command and os.sync() carry on as before; fsync of the jail's own
# files still works. syncfs is tried on a read-only system file, the work
# directory and /tmp. x86_64 numbers.
# expect: reason=exited exit=0
# expect: stdout-contains=sync refused 500 of 500
# expect: stdout-contains=syncfs refused 1500 of 1500
# expect: stdout-contains=benign fsync OK
# expect: stdout-contains=benign os.sync OK
# expect: stdout-contains=benign sync command OK
brig_jailed()
import platform, subprocess
if platform.machine() != "x86_64":
    print("SKIP not x86_64: sync refused 500 of 500, syncfs refused 1500 of 1500, "
          "benign fsync OK, benign os.sync OK, benign sync command OK")
    sys.exit(0)
SYS_sync, SYS_syncfs = 162, 306
def count(n, nr, *args):
    refused, other = 0, {}
    for _ in range(n):
        try:
            sys_call(nr, *args)
            other["OK"] = other.get("OK", 0) + 1
        except OSError as e:
            if e.errno == errno.EPERM:
                refused += 1
            else:
                other[ename(e)] = other.get(ename(e), 0) + 1
    return refused, other
r, other = count(500, SYS_sync)
print("sync refused %d of 500" % r, other or "")
total = 0
for path in ("/usr/bin/python3", ".", "/tmp"):
    fd = os.open(path, os.O_RDONLY)
    r, other = count(500, SYS_syncfs, fd)
    total += r
    print("syncfs", path, "refused", r, other or "")
    os.close(fd)
print("syncfs refused %d of 1500" % total)
with open("/tmp/data", "wb") as f:
    f.write(b"x" * 4096)
    probe("benign fsync", lambda: os.fsync(f.fileno()))
    probe("benign fdatasync", lambda: os.fdatasync(f.fileno()))
probe("benign os.sync", os.sync)
s = subprocess.run(["sync"], capture_output=True, text=True)
print("benign sync command", "OK" if s.returncode == 0 else "FAILED %d %s" % (s.returncode, s.stderr))
