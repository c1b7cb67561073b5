# judge0 #564 and bubblewrap's PID 1: the supervisor's environment (which
# holds BRIG_BAIT_SECRET) must reach no process of the jail, not even
# through /proc/PID/environ. The runner checks the secret is nowhere in
# the output; the payload prints everything it can find.
# expect: reason=exited exit=0
# expect: stdout-contains=secret var absent True
# expect: stdout-contains=env PATH=/usr/local/bin:/usr/bin:/bin
# expect: stdout-contains=DONE
brig_jailed()
name = os.environ["BAIT_SECRET_ENV"]
print("secret var absent", name not in os.environ)
for k, v in sorted(os.environ.items()):
    print("env %s=%s" % (k, v))
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    try:
        print("environ", pid, open("/proc/%s/environ" % pid, "rb").read().replace(b"\0", b" "))
    except OSError as e:
        print("environ", pid, ename(e))
    try:
        print("cmdline", pid, open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ")[:200])
    except OSError as e:
        print("cmdline", pid, ename(e))
print("auxv-execfn", open("/proc/self/cmdline", "rb").read()[:30])
import subprocess
print("sh env", subprocess.run(["sh", "-c", "env; set"], capture_output=True, text=True).stdout.replace("\n", " ")[:3000])
print("DONE")
