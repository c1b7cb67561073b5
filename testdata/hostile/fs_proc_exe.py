# runc CVE-2019-5736: open the runtime's binary through /proc/PID/exe and
# overwrite it. brig's init (PID 1) is the host's brig binary: it is not
# dumpable and runs as another uid, so its exe, root, cwd, fds, memory and
# environment are closed to the program. The program's own exe is on a
# read-only mount.
# expect: reason=exited exit=0
# expect: stdout-matches=^open /proc/1/exe rb EACCES$
# expect: stdout-matches=^open /proc/1/exe r\+b EACCES$
# expect: stdout-matches=^open /proc/self/exe r\+b (EROFS|ETXTBSY|EACCES)$
# expect: stdout-matches=^readlink /proc/1/exe EACCES$
# expect: stdout-matches=^listdir /proc/1/root EACCES$
# expect: stdout-matches=^listdir /proc/1/fd EACCES$
# expect: stdout-matches=^open /proc/1/mem rb EACCES$
# expect: stdout-matches=^open /proc/1/environ rb EACCES$
# expect: stdout-matches=^reopen exe via fd (EROFS|ETXTBSY|EACCES)$
# expect: stdout-contains=DONE
brig_jailed()
def op(p, mode):
    with open(p, mode) as f:
        return len(f.read(16)) if "r" in mode else None
for p in ["/proc/1/exe", "/proc/self/exe"]:
    for m in ["rb", "r+b"]:
        probe("open %s %s" % (p, m), lambda p=p, m=m: op(p, m) and None)
probe("readlink /proc/1/exe", lambda: os.readlink("/proc/1/exe"))
probe("listdir /proc/1/root", lambda: os.listdir("/proc/1/root"))
probe("listdir /proc/1/cwd", lambda: os.listdir("/proc/1/cwd"))
probe("listdir /proc/1/fd", lambda: os.listdir("/proc/1/fd"))
probe("open /proc/1/mem rb", lambda: op("/proc/1/mem", "rb") and None)
probe("open /proc/1/environ rb", lambda: op("/proc/1/environ", "rb") and None)
probe("open /proc/1/root/etc/passwd", lambda: op("/proc/1/root/etc/passwd", "rb") and None)
# The O_PATH trick: keep an fd to the exe, then reopen it for writing
# through /proc/self/fd (what the CVE did after the runtime exited).
def reopen():
    fd = os.open("/proc/self/exe", os.O_PATH)
    try:
        w = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY)
        os.close(w)
    finally:
        os.close(fd)
probe("reopen exe via fd", reopen)
# A child's exe is python too; its parent's is init's: closed again.
import subprocess
r = subprocess.run(["sh", "-c", "cat /proc/$PPID/exe >/dev/null 2>&1 && echo parent-exe-readable || echo parent-exe-closed; readlink /proc/1/exe || echo init-exe-closed"], capture_output=True, text=True)
print(r.stdout.strip().replace("\n", " "))
print("DONE")
