# Kernel knobs under /proc/sys and /proc/sysrq-trigger must be read-only.
# Each write puts back the value just read (or sysrq 'h', help), so it
# would be harmless even if it went through; it must not go through.
# expect: reason=exited exit=0
# expect: stdout-not-contains= OK
# expect: stdout-matches=^write /proc/sys/kernel/core_pattern (EROFS|EACCES)$
# expect: stdout-matches=^write /proc/sys/kernel/hostname (EROFS|EACCES)$
# expect: stdout-matches=^write /proc/sys/vm/overcommit_memory (EROFS|EACCES)$
# expect: stdout-matches=^write /proc/sysrq-trigger (EROFS|EACCES|ENOENT)$
# expect: stdout-matches=^lower oom_score_adj (EACCES|EPERM)$
# expect: stdout-contains=DONE
brig_jailed()
knobs = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/kernel/modprobe",
         "/proc/sys/kernel/sysrq", "/proc/sys/vm/overcommit_memory", "/proc/sys/vm/panic_on_oom",
         "/proc/sys/net/ipv4/ip_forward", "/proc/sys/fs/file-max", "/proc/sys/kernel/randomize_va_space",
         "/proc/sys/kernel/unprivileged_bpf_disabled", "/proc/sys/user/max_user_namespaces"]
for k in knobs:
    try:
        v = open(k).read()
    except OSError as e:
        print("read", k, ename(e)); continue
    def w(k=k, v=v):
        with open(k, "w") as f: f.write(v)
    probe("write " + k, w)
def sysrq():
    with open("/proc/sysrq-trigger", "w") as f: f.write("h")
probe("write /proc/sysrq-trigger", sysrq)
for p in ["/proc/irq/default_smp_affinity", "/proc/fs/nfsd/threads", "/proc/bus/pci/devices"]:
    def w2(p=p):
        v = open(p).read()
        with open(p, "w") as f: f.write(v)
    probe("rewrite " + p, w2)
# oom_score_adj may only go up for an unprivileged process: lowering it
# (to dodge the OOM killer at the host's expense) must fail.
def lower():
    fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    try: os.write(fd, b"-1000")
    finally: os.close(fd)
probe("lower oom_score_adj", lower)
print("oom_score_adj", open("/proc/self/oom_score_adj").read().strip())
print("DONE")
