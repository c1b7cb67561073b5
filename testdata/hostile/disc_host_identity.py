# What identifies the host without any program needing it: the kernel's
# command line and configuration, the boot id, pressure stall figures;
# and the audit login uid, which a task whose own is unset may set once
# (without privilege) to any uid. Masked empty, and the jail's login uid
# is set before the program starts, so the program cannot change it.
# meminfo and loadavg stay readable (free, psutil, os.getloadavg).
# expect: reason=exited exit=0
# expect: stdout-contains=/proc/cmdline bytes 0
# expect: stdout-contains=/proc/config.gz bytes 0
# expect: stdout-contains=/proc/sys/kernel/random/boot_id bytes 0
# expect: stdout-matches=^/proc/pressure (entries 0|ENOENT)$
# expect: stdout-contains=loginuid 1000
# expect: stdout-matches=^loginuid write 0 (EPERM|EINVAL|EIO)$
# expect: stdout-matches=^loginuid write 1000 (EPERM|EINVAL|EIO)$
# expect: stdout-contains=meminfo readable
# expect: stdout-contains=DONE
brig_jailed()
for p in ["/proc/cmdline", "/proc/config.gz", "/proc/sys/kernel/random/boot_id"]:
    try:
        with open(p, "rb") as f:
            print(p, "bytes", len(f.read()))
    except OSError as e:
        print(p, ename(e))
try:
    print("/proc/pressure entries", len(os.listdir("/proc/pressure")))
except OSError as e:
    print("/proc/pressure", ename(e))
print("loginuid", open("/proc/self/loginuid").read().strip())
for uid in ["0", "1000"]:
    try:
        fd = os.open("/proc/self/loginuid", os.O_WRONLY)
        try:
            os.write(fd, uid.encode())
            print("loginuid write", uid, "WORKED", open("/proc/self/loginuid").read().strip())
        finally:
            os.close(fd)
    except OSError as e:
        print("loginuid write", uid, ename(e))
print("meminfo", "readable" if open("/proc/meminfo").read().startswith("MemTotal") else "empty")
print("DONE")
