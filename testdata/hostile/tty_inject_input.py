# brig run -t: the program's stdio is a pty of the jail's own devpts
# instance, never the caller's terminal. It tries to push input into a
# terminal (TIOCSTI, the classic way to make a shell outside run a
# command: CVE-2017-5226), on its stdin and on /dev/tty, with the ioctl
# number's upper bits set too, and TIOCLINUX; and it looks for any fd of a
# terminal that is not its own pty. Sizes and modes, what a terminal
# program needs, still work.
# config: tty timeout=10s
# soak: no
# expect: reason=exited exit=0
# expect: stdout-contains=stdin is the jail's /dev/pts/0, 1 pty in its devpts
# expect: stdout-contains=termios and window size work
# expect: stdout-contains=TIOCSTI on stdin refused EPERM
# expect: stdout-contains=TIOCSTI high bits on stdin refused EPERM
# expect: stdout-contains=TIOCSTI on /dev/tty refused EPERM
# expect: stdout-contains=TIOCLINUX on stdin refused EPERM
# expect: stdout-contains=no terminal but the jail's pty
# expect: stdout-not-contains=INJECTED
brig_jailed()
import errno, fcntl, struct, termios

def refused(what, fd, req, arg):
    try:
        fcntl.ioctl(fd, req, arg)
        print(what, "ALLOWED: INJECTED", flush=True)
    except OSError as e:
        print(what, "refused", errno.errorcode.get(e.errno, e.errno), flush=True)

pts = sorted(os.listdir("/dev/pts"))
if os.isatty(0) and os.ttyname(0) == "/dev/pts/0" and pts == ["0", "ptmx"]:
    print("stdin is the jail's /dev/pts/0, 1 pty in its devpts")
else:
    print("stdin:", os.isatty(0), pts)
termios.tcsetattr(0, termios.TCSANOW, termios.tcgetattr(0))
rows, cols = struct.unpack("hhhh", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
if rows > 0 and cols > 0:
    print("termios and window size work")
refused("TIOCSTI on stdin", 0, termios.TIOCSTI, b"x")
refused("TIOCSTI high bits on stdin", 0, 0x1_0000_0000 | termios.TIOCSTI, b"x")
try:
    tty = os.open("/dev/tty", os.O_RDWR)
    refused("TIOCSTI on /dev/tty", tty, termios.TIOCSTI, b"x")
    os.close(tty)
except OSError as e:
    print("TIOCSTI on /dev/tty refused (no /dev/tty)", errno.errorcode.get(e.errno, e.errno))
refused("TIOCLINUX on stdin", 0, 0x541C, b"\x0b")  # TIOCLINUX: 11 is TIOCL_GETKMSGREDIRECT
own = os.stat("/dev/pts/0").st_rdev
others = []
for fd in os.listdir("/proc/self/fd"):
    try:
        st = os.stat("/proc/self/fd/" + fd)
    except OSError:
        continue
    if os.isatty(int(fd)) and st.st_rdev != own:
        others.append(fd)
print("no terminal but the jail's pty" if not others else "other terminals: %s" % others)
