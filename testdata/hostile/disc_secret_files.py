# Secrets on the host's disk: /etc/shadow and friends, root's and users'
# home directories, ssh keys, and the runner's own secret file under
# /root, by every path that could lead there.
# expect: reason=exited exit=0
# expect: stdout-contains=secret-file ENOENT
# expect: stdout-contains=/etc/shadow ENOENT
# expect: stdout-contains=/etc/gshadow ENOENT
# expect: stdout-contains=/root ENOENT
# expect: stdout-contains=/home ENOENT
# expect: stdout-contains=/proc/1/root-secret EACCES
# expect: stdout-not-contains= OK
# expect: stdout-contains=DONE
brig_jailed()
secret = os.environ["BAIT_SECRET_FILE"]
probe("secret-file", lambda: open(secret).read() and None)
probe("/proc/1/root-secret", lambda: open("/proc/1/root" + secret).read() and None)
probe("/proc/1/cwd-secret", lambda: open("/proc/1/cwd/" + secret).read() and None)
for p in ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssl/private",
          "/root", "/root/.ssh/id_rsa", "/home", "/var/lib", "/var/log/auth.log", "/run/secrets", "/oldroot",
          "/newroot", "/scratch", "/etc/machine-id", "/boot"]:
    probe(p, lambda p=p: os.listdir(p) if os.path.isdir(p) else open(p, "rb").read(1) and None)
print("passwd", open("/etc/passwd").read().count("\n"), "lines")
print("DONE")
