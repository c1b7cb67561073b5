# Fill every writable place: /tmp, the workdir and /dev/shm share one
# tmpfs of 8 MiB, so together they stop at 8 MiB (ENOSPC); everything
# else is read-only. Then exhaust inodes with empty files: an inode costs
# no bytes of size=, so only the tmpfs's inode cap (or the memory cgroup
# charging the kernel memory) stops it.
# config: tmpfs=8M timeout=20s
# expect: reason=exited exit=0
# expect: stdout-matches=^total written [0-9]+ KiB within 8192$
# expect: stdout-contains=/ EROFS
# expect: stdout-contains=/dev EROFS
# expect: stdout-contains=/etc EROFS
# expect: stdout-matches=^inodes stopped at [0-9]+ ENOSPC$
# expect: stdout-contains=DONE
brig_jailed()
total = 0
for d in ["/tmp", "/work", "/dev/shm", "/", "/dev", "/etc", "/usr", "/proc", "/dev/pts"]:
    n = 0
    try:
        with open(os.path.join(d, "fill"), "wb") as f:
            while True:
                f.write(b"x" * (1 << 20)); f.flush(); n += 1
    except OSError as e:
        print(d, ename(e), "after", n, "MiB")
    total += n
    if os.path.exists(os.path.join(d, "fill")) and d in ("/tmp", "/work", "/dev/shm"):
        total_bytes = os.path.getsize(os.path.join(d, "fill"))
sizes = sum(os.path.getsize(os.path.join(d, "fill")) for d in ["/tmp", "/work", "/dev/shm"] if os.path.exists(os.path.join(d, "fill")))
print("total written %d KiB within %d" % (sizes // 1024, 8192 if sizes <= 8 << 20 else 0))
for d in ["/tmp", "/work", "/dev/shm"]:
    try: os.unlink(os.path.join(d, "fill"))
    except OSError: pass
# Inodes: at most 300000 tries (seconds of work); a bound must come first.
os.mkdir("/tmp/i")
n = 0
try:
    while n < 300000:
        os.close(os.open("/tmp/i/%d" % n, os.O_CREAT | os.O_WRONLY, 0o600)); n += 1
    print("inodes unbounded: created", n)
except OSError as e:
    print("inodes stopped at", n, ename(e))
print("DONE")
