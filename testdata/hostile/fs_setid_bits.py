# A writable bind keeps what the jail leaves there, owned by a host uid a
# later jail may be given: the jail must not be able to make a set-user-ID
# or set-group-ID file anywhere, through any call that takes a mode (chmod,
# fchmod, fchmodat, open/openat/creat with O_CREAT or O_TMPFILE, mknod and
# mknodat of a regular file, a high bit above the mode), in /tmp or in the
# outbox. mkdir drops the bits in the kernel; openat2 (whose mode the
# filter cannot see) answers ENOSYS. Then every file made is checked. The
# benign side: chmod 0755, a mode of 01777 (sticky), chmod +x, cp -p and
# tar keep working. x86_64 numbers.
# config: outbox
# expect: reason=exited exit=0
# expect: stdout-contains=setid made 0 of 28
# expect: stdout-not-contains=SETID-FILE
# expect: stdout-contains=benign chmod 0755 OK 0o755
# expect: stdout-contains=benign sticky OK 0o1777
# expect: stdout-contains=benign shell OK
brig_jailed()
import stat, subprocess, platform
if platform.machine() != "x86_64":
    print("SKIP not x86_64: setid made 0 of 28, benign chmod 0755 OK 0o755, benign sticky OK 0o1777, benign shell OK")
    sys.exit(0)
AT_FDCWD, O_TMPFILE = -100, 0o20200000
S_ISUID, S_ISGID = 0o4000, 0o2000
made = attempts = 0
seen = set()
def check(where, path, fd=None):
    global made
    try:
        m = os.fstat(fd).st_mode if fd is not None else os.lstat(path).st_mode
    except OSError:
        return
    if m & (S_ISUID | S_ISGID) and path not in seen:
        seen.add(path)
        made += 1
        print("SETID-FILE", where, path, oct(m))
def attempt(name, path, fn):
    global attempts
    attempts += 1
    try:
        r = fn()
        if isinstance(r, int) and r > 2:
            os.close(r)
        print(name, "OK")
    except OSError as e:
        print(name, ename(e))
    check(name, path)

for d in ("/tmp", "/out"):
    base = d + "/setid-"
    for bits, bname in ((S_ISUID, "suid"), (S_ISGID, "sgid"), (S_ISUID | S_ISGID, "both")):
        mode = bits | 0o755
        f = base + "chmod-" + bname
        open(f, "w").close()
        attempt("%s chmod %s" % (d, bname), f, lambda: os.chmod(f, mode))
    f = base + "fchmod"; fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o644)
    attempt(d + " fchmod", f, lambda: os.fchmod(fd, S_ISUID | 0o755)); os.close(fd)
    f = base + "fchmodat"; open(f, "w").close()
    attempt(d + " fchmodat", f, lambda: sys_call(268, AT_FDCWD, f.encode(), S_ISGID | 0o755))
    # The kernel reads mode_t from the low bits: a high bit must not hide S_ISUID.
    f = base + "chmod-high"; open(f, "w").close()
    attempt(d + " chmod high bit", f, lambda: sys_call(90, f.encode(), (1 << 32) | S_ISUID | 0o755))
    f = base + "open"
    attempt(d + " open O_CREAT", f, lambda: sys_call(2, f.encode(), os.O_CREAT | os.O_WRONLY, S_ISUID | 0o755))
    f = base + "openat"
    attempt(d + " openat O_CREAT", f, lambda: os.open(f, os.O_CREAT | os.O_WRONLY, S_ISUID | S_ISGID | 0o755))
    f = base + "creat"
    attempt(d + " creat", f, lambda: sys_call(85, f.encode(), S_ISUID | 0o755))
    # An unnamed file: linkat could give it a name later.
    f = base + "tmpfile"
    def tmpfile():
        fd = os.open(d, O_TMPFILE | os.O_WRONLY, S_ISUID | 0o755)
        check(d + " O_TMPFILE", f, fd)
        return fd
    attempt(d + " O_TMPFILE", f, tmpfile)
    f = base + "mknod"
    attempt(d + " mknod S_IFREG", f, lambda: sys_call(133, f.encode(), stat.S_IFREG | S_ISUID | 0o755, 0))
    f = base + "mknodat"
    attempt(d + " mknodat S_IFREG", f, lambda: os.mknod(f, stat.S_IFREG | S_ISGID | 0o755))
    f = base + "mkdir"
    attempt(d + " mkdir", f, lambda: os.mkdir(f, S_ISUID | S_ISGID | 0o755))
    # openat2 with a struct open_how {flags, mode, resolve}.
    f = base + "openat2"
    how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, S_ISUID | 0o755, 0)
    attempt(d + " openat2", f, lambda: sys_call(437, AT_FDCWD, f.encode(), how, 24))
# Everything left behind, once more.
for d in ("/tmp", "/out"):
    for n in os.listdir(d):
        check("left", os.path.join(d, n))
print("setid made %d of %d" % (made, attempts))

# The benign side.
f = "/out/benign"
open(f, "w").close()
probe("benign chmod 0755", lambda: (os.chmod(f, 0o755), oct(stat.S_IMODE(os.stat(f).st_mode)))[1])
os.mkdir("/tmp/shared")
probe("benign sticky", lambda: (os.chmod("/tmp/shared", 0o1777), oct(stat.S_IMODE(os.stat("/tmp/shared").st_mode)))[1])
sh = subprocess.run(["/bin/sh", "-c", "set -e; cd /tmp; echo hi > a; chmod +x a; chmod u=rwx,go=rx a; cp -p a b; "
                     "install -m 0750 a c; tar cf t.tar a b c; mkdir x; tar xpf t.tar -C x; test -x x/c; sync; echo done"],
                    capture_output=True, text=True)
print("benign shell", "OK" if sh.returncode == 0 and "done" in sh.stdout else "FAILED %d %s" % (sh.returncode, sh.stderr))
for n in os.listdir("/out"):
    p = os.path.join("/out", n)
    (os.rmdir if os.path.isdir(p) and not os.path.islink(p) else os.unlink)(p)
