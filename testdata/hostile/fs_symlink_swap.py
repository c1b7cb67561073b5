# CVE-2021-30465 and judge0/go-judge: plant symlinks (and swap a directory
# for a symlink in a loop) in the writable places the host shares with the
# jail, aiming at the host's secrets. Inside, symlinks resolve against the
# jail's root; the host must never follow what the jail planted (the
# runner removes the outbox without following, and checks the secret
# file is untouched).
# config: outbox
# expect: reason=exited exit=0
# expect: stdout-contains=read-through-link ENOENT
# expect: stdout-contains=read-proc1-root EACCES
# expect: stdout-contains=swaps 
# expect: stdout-contains=outbox-owner 1000
# expect: stdout-contains=DONE
brig_jailed()
import time, threading
secret = os.environ["BAIT_SECRET_FILE"]
os.symlink(secret, "/out/secret-link")
os.symlink("/", "/out/root-link")
os.symlink("/proc/1/root" + secret, "/out/proc-link")
os.symlink("/etc/shadow", "/tmp/shadow-link")
probe("read-through-link", lambda: open("/out/secret-link").read() and None)
probe("read-proc1-root", lambda: open("/proc/1/root" + secret).read() and None)
probe("read-shadow-link", lambda: open("/tmp/shadow-link").read() and None)
# Swap a directory for a symlink as fast as possible for a while.
os.mkdir("/out/dir"); open("/out/dir/f", "w").write("x")
stop = time.time() + 0.5; n = 0
while time.time() < stop:
    os.rename("/out/dir", "/out/dir.real"); os.symlink(secret.rsplit("/", 1)[0], "/out/dir")
    os.unlink("/out/dir"); os.rename("/out/dir.real", "/out/dir"); n += 1
print("swaps", n > 0)
os.unlink("/out/dir/f"); os.rmdir("/out/dir")
os.symlink(secret.rsplit("/", 1)[0], "/out/dir")   # leave a symlink where a directory was
# Hard links to files outside the outbox cannot be made across mounts.
probe("hardlink /etc/passwd", lambda: os.link("/etc/passwd", "/out/passwd"))
print("outbox-owner", os.stat("/out/secret-link", follow_symlinks=False).st_uid)
print("DONE")
