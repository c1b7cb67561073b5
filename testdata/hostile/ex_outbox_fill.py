# Fill a writable host directory bound into the jail. brig does not bound
# a bind's size: the host filesystem does (here the runner's 4 MiB tmpfs
# with 4096 inodes). The jail must get ENOSPC, not fill the host's disk;
# callers who bind real directories must size them themselves.
# config: outbox timeout=20s
# expect: reason=exited exit=0
# expect: stdout-matches=^outbox bytes ENOSPC after [0-4] MiB$
# expect: stdout-matches=^outbox inodes ENOSPC after [0-9]+$
brig_jailed()
n = 0
try:
    with open("/out/fill", "wb") as f:
        while n < 64:
            f.write(b"x" * (1 << 20)); f.flush(); n += 1
    print("outbox bytes unbounded", n)
except OSError as e:
    print("outbox bytes", ename(e), "after", n, "MiB")
os.unlink("/out/fill")
n = 0
try:
    while n < 100000:
        os.close(os.open("/out/i%d" % n, os.O_CREAT | os.O_WRONLY, 0o600)); n += 1
    print("outbox inodes unbounded", n)
except OSError as e:
    print("outbox inodes", ename(e), "after", n)
