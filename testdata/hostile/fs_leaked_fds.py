# runc CVE-2024-21626: a directory fd of the host leaked into the
# container and used as a working directory reaches the host's tree. Only
# fds 0-2 may reach the program, none of them a directory, and its cwd
# and root must be the jail's.
# expect: reason=exited exit=0
# expect: stdout-contains=fds [0, 1, 2]
# expect: stdout-contains=fchdir-any none
# expect: stdout-contains=std-dirs none
# expect: stdout-contains=cwd /work
# expect: stdout-contains=root /
# expect: stdout-contains=dotdot-escape no
brig_jailed()
import stat
def still_open(fd):
    try: os.fstat(fd); return True
    except OSError: return False
fds = [fd for fd in sorted(int(x) for x in os.listdir("/proc/self/fd")) if still_open(fd)]
print("fds", fds)
worked = []
for fd in range(3, 1024):
    try:
        os.fchdir(fd); worked.append(fd)
    except OSError:
        pass
print("fchdir-any", worked or "none")
print("std-dirs", [fd for fd in (0, 1, 2) if stat.S_ISDIR(os.fstat(fd).st_mode)] or "none")
os.chdir("/work")
print("cwd", os.readlink("/proc/self/cwd"))
print("root", os.readlink("/proc/self/root"))
# Climb as far as .. goes: it must stay in the jail's root.
os.chdir("/work")
for _ in range(50): os.chdir("..")
print("dotdot-escape", "yes" if os.path.exists("/root") or os.path.exists("/oldroot") or os.path.exists("/home") else "no", sorted(os.listdir(".")))
for fd in fds:
    print("fd", fd, os.readlink("/proc/self/fd/%d" % fd))
