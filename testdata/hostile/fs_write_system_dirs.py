# Writing, creating, renaming, chmodding or removing anything in the
# system directories must fail: the root and every system bind are
# read-only, and the program is not their owner anyway.
# expect: reason=exited exit=0
# expect: stdout-contains=DONE
# expect: stdout-not-contains= OK
# expect: stdout-matches=^create /usr/bin/x EROFS$
# expect: stdout-matches=^create /x EROFS$
# expect: stdout-matches=^create /etc/x EROFS$
# expect: stdout-matches=^create /dev/x EROFS$
# expect: stdout-matches=^append /etc/passwd (EROFS|EACCES)$
# expect: stdout-matches=^chmod /usr/bin/python3 (EROFS|EPERM)$
brig_jailed()
targets = ["/x", "/usr/x", "/usr/bin/x", "/usr/lib/x", "/bin/x", "/lib/x", "/sbin/x", "/etc/x",
           "/etc/ld.so.preload", "/dev/x", "/dev/pts/x", "/proc/x", "/proc/self/x"]
for t in targets:
    def create(t=t):
        with open(t, "xb") as f: f.write(b"pwned")
    probe("create " + t, create)
def append(p):
    with open(p, "ab") as f: f.write(b"")
for p in ["/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/ld.so.cache", "/usr/bin/python3", "/bin/sh", "/dev/null/x"]:
    probe("append " + p, lambda p=p: append(p))
for p in ["/usr/bin/python3", "/etc/passwd", "/", "/dev"]:
    probe("chmod " + p, lambda p=p: os.chmod(p, 0o777))
    probe("chown " + p, lambda p=p: os.chown(p, 1000, 1000))
probe("rename /etc/hosts", lambda: os.rename("/etc/hosts", "/etc/hosts2"))
probe("unlink /etc/hosts", lambda: os.unlink("/etc/hosts"))
probe("rmdir /usr/share", lambda: os.rmdir("/usr/share"))
probe("mkdir /usr/x", lambda: os.mkdir("/usr/x"))
probe("symlink /usr/x", lambda: os.symlink("/tmp", "/usr/x"))
probe("utime /usr/bin/python3", lambda: os.utime("/usr/bin/python3"))
probe("mknod /tmp/null", lambda: os.mknod("/tmp/null", 0o666 | 0o020000, os.makedev(1, 3)))
print("DONE")
