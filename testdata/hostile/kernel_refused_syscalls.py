# Every system call the default seccomp policy refuses, made with arguments
# that would be harmless even if it went through, must fail with EPERM (the
# named refusals) or ENOSYS (everything not on the allow-list); the
# conditional rules must refuse their dangerous arguments and let the
# harmless ones through. x86_64 numbers.
# expect: reason=exited exit=0
# expect: stdout-contains=DONE refused=55
# expect: stdout-not-contains=NOT-REFUSED
# expect: stdout-contains=seccomp mode 2
brig_jailed()
import platform, socket
if platform.machine() != "x86_64":
    print("SKIP not x86_64"); print("DONE refused=55"); sys.exit(0)
print("seccomp mode", [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0])
buf = ctypes.create_string_buffer
host = buf(b"brig")
dom = buf(open("/proc/sys/kernel/domainname").read().strip().encode())
refused = {  # name: (nr, args)
    "mount": (165, 0, 0, 0, 0, 0), "umount2": (166, 0, 0), "fsopen": (430, 0, 0),
    "fsconfig": (431, -1, 0, 0, 0, 0), "fsmount": (432, -1, 0, 0), "fspick": (433, -1, 0, 0),
    "move_mount": (429, -1, 0, -1, 0, 0), "open_tree": (428, -1, 0, 0),
    "mount_setattr": (442, -1, 0, 0, 0, 0), "pivot_root": (155, 0, 0), "chroot": (161, 0),
    "unshare": (272, 0), "setns": (308, -1, 0),
    "ptrace": (101, -1, 0, 0, 0), "process_vm_readv": (310, 0, 0, 0, 0, 0, 0),
    "process_vm_writev": (311, 0, 0, 0, 0, 0, 0), "kcmp": (312, 0, 0, 0, 0, 0),
    "pidfd_getfd": (438, -1, -1, 0), "process_madvise": (440, -1, 0, 0, 0, 0),
    "bpf": (321, -1, 0, 0), "perf_event_open": (298, 0, 0, -1, -1, 0), "userfaultfd": (323, 0),
    "io_uring_setup": (425, 0, 0), "io_uring_enter": (426, -1, 0, 0, 0, 0, 0),
    "io_uring_register": (427, -1, 0, 0, 0), "keyctl": (250, -1, 0, 0, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0), "request_key": (249, 0, 0, 0, 0),
    "fanotify_init": (300, 0, 0), "lookup_dcookie": (212, 0, 0, 0), "modify_ldt": (154, 0, 0, 0),
    "uselib": (134, 0), "kexec_load": (246, 0, 0, 0, 0), "kexec_file_load": (320, -1, -1, 0, 0, 0),
    "init_module": (175, 0, 0, 0), "finit_module": (313, -1, 0, 0), "delete_module": (176, 0, 0),
    "reboot": (169, 0, 0, 0, 0), "swapon": (167, 0, 0), "swapoff": (168, 0), "acct": (163, 0),
    "quotactl": (179, 0, 0, 0, 0), "quotactl_fd": (443, -1, 0, 0, 0), "vhangup": (153,),
    "settimeofday": (164, 0, 0), "clock_settime": (227, 0, 0), "clock_adjtime": (305, 0, 0),
    "adjtimex": (159, 0), "sethostname": (170, host, 4), "setdomainname": (171, dom, len(dom.value)),
    "iopl": (172, 0), "ioperm": (173, 0, 0, 0), "syslog": (103, 10, 0, 0),
    "open_by_handle_at": (304, -1, 0, 0), "name_to_handle_at": (303, -1, 0, 0, 0, 0),
}
n = 0
for name, (nr, *args) in sorted(refused.items()):
    try:
        r = sys_call(nr, *args)
        print("NOT-REFUSED", name, "returned", r)
    except OSError as e:
        if e.errno == errno.EPERM:
            n += 1; print("REFUSED", name)
        else:
            print("NOT-REFUSED", name, ename(e))
# Not on the allow-list: the default action, ENOSYS.
for name, nr, args in [("mbind", 237, (0, 0, 0, 0, 0, 0)), ("move_pages", 279, (0, 0, 0, 0, 0, 0)),
                       ("migrate_pages", 256, (0, 0, 0, 0)), ("get_mempolicy", 239, (0, 0, 0, 0, 0)),
                       ("memfd_secret", 447, (0,)), ("remap_file_pages", 216, (0, 0, 0, 0, 0)),
                       ("fanotify_mark", 301, (-1, 0, 0, -1, 0)), ("clone3", 435, (0, 0))]:
    try:
        sys_call(nr, *args); print("NOT-REFUSED", name, "OK")
    except OSError as e:
        print("ENOSYS" if e.errno == errno.ENOSYS else "NOT-REFUSED", name, ename(e))
# Conditional rules: the dangerous argument refused, the harmless one allowed.
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x20000, 0x40000000, 17
for flag in (CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET):
    try:
        r = sys_call(56, flag | SIGCHLD, 0, 0, 0, 0)
        if r == 0: os._exit(0)
        os.waitpid(r, 0); print("NOT-REFUSED clone", hex(flag))
    except OSError as e:
        print("REFUSED clone" if e.errno == errno.EPERM else "NOT-REFUSED clone", hex(flag), ename(e))
for fam, fname in [(17, "AF_PACKET"), (40, "AF_VSOCK"), (38, "AF_ALG"), (31, "AF_BLUETOOTH"), (15, "AF_KEY"), (29, "AF_CAN"), (9, "AF_X25")]:
    try:
        s = socket.socket(fam, socket.SOCK_RAW if fam == 17 else socket.SOCK_SEQPACKET); s.close()
        print("NOT-REFUSED socket", fname)
    except OSError as e:
        print("REFUSED socket" if e.errno == errno.EPERM else "NOT-REFUSED socket", fname, ename(e))
try:
    sys_call(53, socket.AF_INET, socket.SOCK_STREAM, 0, buf(8)); print("NOT-REFUSED socketpair AF_INET")
except OSError as e:
    print("REFUSED socketpair" if e.errno == errno.EPERM else "NOT-REFUSED socketpair", ename(e))
c = buf(b"\0")
for req in (0x5412, 0x541C, (1 << 32) | 0x5412, (0xdead << 32) | 0x541C):  # TIOCSTI, TIOCLINUX, and with high bits set
    try:
        sys_call(16, 0, req, c); print("NOT-REFUSED ioctl", hex(req))
    except OSError as e:
        print("REFUSED ioctl" if e.errno == errno.EPERM else "NOT-REFUSED ioctl", hex(req), ename(e))
for pers in (0x0040000, 0x0400000):  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC
    try:
        sys_call(135, pers); print("NOT-REFUSED personality", hex(pers))
    except OSError as e:
        print("REFUSED personality" if e.errno == errno.EPERM else "NOT-REFUSED personality", hex(pers), ename(e))
# The harmless side still works.
print("allowed personality query", sys_call(135, 0xffffffff) >= 0)
print("allowed getpid", sys_call(39) == os.getpid())
a, b = socket.socketpair(); a.send(b"x"); print("allowed socketpair", b.recv(1)); a.close(); b.close()
print("DONE refused=%d" % n)
