# Kernel memory and logs: /dev/kmsg, /proc/kmsg, /proc/kcore,
# /proc/kallsyms, /proc/keys, syslog(2), /sys. All absent, masked empty,
# or refused.
# expect: reason=exited exit=0
# expect: stdout-contains=/dev/kmsg ENOENT
# expect: stdout-matches=^/proc/kcore (bytes 0|ENOENT)$
# expect: stdout-contains=/proc/kallsyms bytes 0
# expect: stdout-contains=/proc/keys bytes 0
# expect: stdout-contains=/proc/kmsg bytes 0
# expect: stdout-contains=/proc/timer_list bytes 0
# expect: stdout-contains=/sys ENOENT
# expect: stdout-contains=syslog EPERM
# expect: stdout-contains=dmesg fails
# expect: stdout-contains=DONE
brig_jailed()
probe("/dev/kmsg", lambda: open("/dev/kmsg", "rb").read(1) and None)
probe("/dev/mem", lambda: open("/dev/mem", "rb").read(1) and None)
for p in ["/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/kmsg", "/proc/timer_list", "/proc/sched_debug", "/proc/vmallocinfo"]:
    try:
        with open(p, "rb") as f:
            os.set_blocking(f.fileno(), False)
            try: n = len(f.read(65536) or b"")
            except BlockingIOError: n = "would-block"
        print(p, "bytes", n)
    except OSError as e:
        print(p, ename(e))
probe("/sys", lambda: os.listdir("/sys") and None)
probe("syslog", lambda: sys_call(103, 3, ctypes.create_string_buffer(4096), 4096))
import subprocess
r = subprocess.run(["dmesg"], capture_output=True)
print("dmesg", "fails" if r.returncode != 0 else "WORKED %d bytes" % len(r.stdout))
print("DONE")
