# A jail can take advisory locks (flock, fcntl F_RDLCK, OFD locks) on any
# file it can open for reading, host files it can only read included
# (/usr/bin/python3, a --ro-bind file): they are the host's own inodes, so
# a host process locking the same file waits, or gets EAGAIN, until the
# jail ends (its time limit bounds that). The filter sees neither the file
# nor the fd's mode, and fcntl's lock type is in memory; refusing flock or
# fcntl locks outright would break sqlite, pip and flock(1) on the jail's
# own files; the kernel has no mount option that keeps a bind's locks
# apart. The ideal below (refused on a read-only host file) does not hold:
# a known limit. Don't bind files that host services lock (a live
# database, a lock file) into a jail; bind a copy.
# expect: reason=exited exit=0
# expect: stdout-contains=flock LOCK_EX /usr/bin/python3 refused
# expect: stdout-contains=benign sqlite OK
# limit: a jail can hold flock/fcntl/OFD locks on host files it can only read; host lockers of those files wait until it ends
# soak: no
brig_jailed()
import fcntl, struct, sqlite3
fd = os.open("/usr/bin/python3", os.O_RDONLY)
def lock(name, fn):
    try:
        fn(); print(name, "/usr/bin/python3 held")
    except OSError as e:
        print(name, "/usr/bin/python3 refused", ename(e))
lock("flock LOCK_EX", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
fd2 = os.open("/usr/bin/python3", os.O_RDONLY)
lock("fcntl F_RDLCK", lambda: fcntl.fcntl(fd2, fcntl.F_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0)))
fd3 = os.open("/usr/bin/python3", os.O_RDONLY)
lock("OFD F_RDLCK", lambda: fcntl.fcntl(fd3, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0)))
# Seen from another open file description: the locks are on the inode.
other = os.open("/usr/bin/python3", os.O_RDONLY)
try:
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB); print("second flock got it")
except OSError as e:
    print("second flock", ename(e))
# The benign side: locks on the jail's own files.
with open("/tmp/lock", "w") as f:
    probe("benign flock", lambda: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB))
db = sqlite3.connect("/tmp/db.sqlite")
db.execute("create table t (x)"); db.execute("insert into t values (1)"); db.commit()
print("benign sqlite", "OK" if db.execute("select x from t").fetchone() == (1,) else "FAILED")
