# CVE-2022-0492: mount a cgroup v1 hierarchy and write release_agent, the
# program the host kernel runs as root. There is no cgroupfs in the jail,
# mounting one is refused, and nothing of the host's cgroups is reachable.
# expect: reason=exited exit=0
# expect: stdout-contains=sysfs absent
# expect: stdout-contains=mount cgroup EPERM
# expect: stdout-contains=mount cgroup2 EPERM
# expect: stdout-contains=unshare cgroup+mount EPERM
# expect: stdout-contains=release_agent none
# expect: stdout-contains=own cgroups all at their root True
# expect: stdout-contains=DONE
brig_jailed()
print("sysfs", "present" if os.path.exists("/sys") else "absent")
os.makedirs("/tmp/cg", exist_ok=True)
b = ctypes.create_string_buffer
probe("mount cgroup", lambda: sys_call(165, b(b"cgroup"), b(b"/tmp/cg"), b(b"cgroup"), 0, b(b"rdma")))
probe("mount cgroup2", lambda: sys_call(165, b(b"cgroup2"), b(b"/tmp/cg"), b(b"cgroup2"), 0, 0))
probe("unshare cgroup+mount", lambda: sys_call(272, 0x02000000 | 0x20000))
found = []
for root, dirs, files in os.walk("/", topdown=True):
    if root.startswith("/proc"):
        dirs[:] = []; continue
    if "release_agent" in files:
        found.append(root)
print("release_agent", found or "none")
lines = open("/proc/self/cgroup").read().splitlines()
print("own cgroups all at their root", bool(lines) and all(l.endswith(":/") for l in lines), lines[:3])
print("DONE")
