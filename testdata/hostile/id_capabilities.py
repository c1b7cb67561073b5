# Identity: uid/gid 1000 with no supplementary groups, host root never
# mapped, no capability in any set, no_new_privs, seccomp filtering, its
# own session without a terminal. Attempts to become root must fail.
# expect: reason=exited exit=0
# expect: stdout-contains=uid 1000 1000 []
# expect: stdout-contains=CapEff 0000000000000000
# expect: stdout-contains=CapPrm 0000000000000000
# expect: stdout-contains=CapBnd 0000000000000000
# expect: stdout-contains=CapAmb 0000000000000000
# expect: stdout-contains=CapInh 0000000000000000
# expect: stdout-contains=NoNewPrivs 1
# expect: stdout-contains=Seccomp 2
# expect: stdout-contains=host root mapped False
# expect: stdout-matches=^setuid (EPERM|EINVAL)$
# expect: stdout-contains=setgroups EPERM
# expect: stdout-contains=capset EPERM
# expect: stdout-contains=tty ENXIO
# expect: stdout-contains=isatty False False False
# expect: stdout-contains=session leader True
# expect: stdout-matches=^setns-by-fd (EPERM|EACCES)$
brig_jailed()
st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
print("uid", os.getuid(), os.getgid(), os.getgroups())
for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
    print(k, st[k].strip())
m = [l.split() for l in open("/proc/self/uid_map")]
print("uid_map", m)
print("host root mapped", any(l[1] == "0" for l in m))
probe("setuid", lambda: os.setuid(0))
probe("setresuid", lambda: os.setresuid(0, 0, 0))
probe("setgroups", lambda: os.setgroups([0]))
class hdr(ctypes.Structure): _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class data(ctypes.Structure): _fields_ = [("eff", ctypes.c_uint32), ("prm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]
d = (data * 2)(); d[0].eff = d[0].prm = 0xffffffff
probe("capset", lambda: sys_call(126, ctypes.byref(hdr(0x20080522, 0)), d))
probe("tty", lambda: open("/dev/tty") and None)
print("isatty", os.isatty(0), os.isatty(1), os.isatty(2))
print("session leader", os.getsid(0) == os.getpid())
probe("setns-by-fd", lambda: sys_call(308, os.open("/proc/1/ns/mnt", os.O_RDONLY), 0))
