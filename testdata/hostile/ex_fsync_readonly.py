# fsync and fdatasync on a file the jail can only read (a system file, a
# --ro-bind) still reach the host's filesystem, which may flush the disk's
# cache for each one: a loop of them keeps the host's disks busy. The
# filter cannot tell a read-only fd from the jail's own files (it sees
# only the number), and refusing fsync would break sqlite and every
# program that saves data safely; brig's limiters set up no I/O
# controller. The ideal below (refused) does not hold: a known limit.
# expect: reason=exited exit=0
# expect: stdout-contains=fsync /usr/bin/python3 refused
# limit: fsync/fdatasync of read-only host files reach the host's disk (no I/O controller; the filter cannot see an fd's mode)
# soak: no
brig_jailed()
fd = os.open("/usr/bin/python3", os.O_RDONLY)
ok = 0
for _ in range(200):
    try:
        os.fsync(fd); os.fdatasync(fd); ok += 1
    except OSError as e:
        print("fsync /usr/bin/python3 refused", ename(e)); break
print("fsync /usr/bin/python3 went through %d of 200" % ok)
