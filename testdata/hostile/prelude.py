# Prepended to every Python payload by the runner (hostile.Load). It proves
# the code runs in a jail before anything else happens: its own PID
# namespace (a pid of at most 64) and a uid map that is not the host's
# identity map. Outside a jail it exits 99 and nothing else runs.
import os, sys, errno
def _jailed():
    if os.getpid() > 64: return False
    m = open("/proc/self/uid_map").read().split()
    return not (m[:3] == ["0", "0", "4294967295"])
if not _jailed():
    print("NOT JAILED: refusing", file=sys.stderr); sys.exit(99)
def brig_jailed():
    # Every payload calls this first; a payload run without this prelude
    # stops there with a NameError.
    if not _jailed():
        print("NOT JAILED: refusing", file=sys.stderr); os._exit(99)

def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__

def probe(name, fn):
    """Runs fn and prints 'name OK [value]' or 'name ERRNO'."""
    try:
        r = fn()
        print(name, "OK" if r is None else "OK %s" % (r,), flush=True)
        return True
    except OSError as e:
        print(name, ename(e), flush=True)
    except Exception as e:
        print(name, type(e).__name__, e, flush=True)
    return False

import ctypes
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

def sys_call(nr, *args):
    """A raw system call; raises OSError on failure, returns the result."""
    a = [ctypes.c_long(x) if isinstance(x, int) else x for x in args]
    r = _libc.syscall(ctypes.c_long(nr), *a)
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
