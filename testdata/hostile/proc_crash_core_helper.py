# No crash in a jail may start anything on the host. With a piped
# kernel.core_pattern (apport, systemd-coredump) the kernel runs the helper
# as root in the host's namespaces for every crash, fed the crashed
# process's memory, unless the process's RLIMIT_CORE is exactly 1 (0 does
# not stop it). The jail runs with 1:1; this payload tries every way to
# lower it (setrlimit, prlimit64, a high bit in the resource, a new limit
# at an address whose low half is 0), then crashes 60 children in every
# way (SIGSEGV, abort, SIGQUIT, SIGBUS..., an exec'd shell) and finally
# itself. The runner points core_pattern at a logger for the run
# (core-logger): none of these crashes may reach it, and a control crash on
# the host must. x86_64 numbers.
# config: core-logger timeout=30s
# expect: reason=signaled signal=11
# expect: stdout-contains=core limit 1 1
# expect: stdout-contains=lowered 0 of 6
# expect: stdout-contains=crashes 60 dumped 0
# expect: stdout-not-contains=CHANGED
# soak: no
brig_jailed()
import resource, signal, platform, time
if platform.machine() != "x86_64":
    print("SKIP not x86_64: core limit 1 1, lowered 0 of 6, crashes 60 dumped 0", flush=True)
    ctypes.string_at(0)
def lim():
    return resource.getrlimit(resource.RLIMIT_CORE)
print("core limit", *lim(), flush=True)
start = lim()

class rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]
zero = rlimit(0, 0)
# A struct rlimit {0, 0} at 0x1_0000_0000: a pointer a filter that looked
# only at the low 32 bits would take for NULL.
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
high = _libc.mmap(1 << 32, 4096, 3, 0x22 | 0x100000, -1, 0)  # RW, PRIVATE|ANONYMOUS|FIXED_NOREPLACE
print("mapped at 0x100000000", high == 1 << 32)
attempts = [
    ("resource.setrlimit 0 0", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
    ("resource.setrlimit soft 0", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, lim()[1]))),
    ("setrlimit", lambda: sys_call(160, 4, ctypes.byref(zero))),
    ("prlimit64", lambda: sys_call(302, 0, 4, ctypes.byref(zero), 0)),
    ("prlimit64 resource 0x100000004", lambda: sys_call(302, 0, (1 << 32) | 4, ctypes.byref(zero), 0)),
    ("prlimit64 new at 0x100000000", lambda: sys_call(302, 0, 4, 1 << 32, 0)),
]
lowered = 0
for name, fn in attempts:
    try:
        fn()
        print("lower", name, "OK")
    except (OSError, ValueError) as e:
        print("lower", name, "refused", ename(e) if isinstance(e, OSError) else e)
    if lim() != start:
        lowered += 1
        print("CHANGED after", name, lim())
print("lowered %d of %d" % (lowered, len(attempts)))
# Reading it stays allowed (glibc's getrlimit is prlimit64 with new NULL).
old = rlimit()
print("prlimit64 read", sys_call(302, 0, 4, 0, ctypes.byref(old)), old.cur, old.max, flush=True)

def crash(how):
    if how == "segv":
        ctypes.string_at(0)
    elif how == "abort":
        os.abort()
    elif how == "exec":
        os.execv("/bin/sh", ["sh", "-c", "kill -SEGV $$"])
    else:
        signal.signal(how, signal.SIG_DFL)  # Python ignores SIGXFSZ
        os.kill(os.getpid(), how)
        time.sleep(5)
ways = ["segv", "abort", "exec", signal.SIGQUIT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
        signal.SIGSYS, signal.SIGTRAP, signal.SIGXCPU, signal.SIGXFSZ]
crashes = dumped = 0
for i in range(60):
    pid = os.fork()
    if pid == 0:
        try:
            crash(ways[i % len(ways)])
        finally:
            os._exit(0)
    _, st = os.waitpid(pid, 0)
    crashes += os.WIFSIGNALED(st)
    dumped += os.WCOREDUMP(st)
print("crashes", crashes, "dumped", dumped, flush=True)
sys.stdout.flush()
ctypes.string_at(0)
print("survived its own crash")
