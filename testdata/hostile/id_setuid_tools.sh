# Set-uid and file-capability programs (su, passwd, mount, newuidmap,
# ping) gain nothing: every mount is nosuid and no_new_privs is set.
# expect: reason=exited exit=0
# expect: stdout-contains=id uid=1000
# expect: stdout-contains=su: refused
# expect: stdout-contains=mount: refused
# expect: stdout-contains=nsenter: refused
# expect: stdout-contains=chroot: refused
# expect: stdout-contains=newuidmap: refused
# expect: stdout-not-contains=uid=0
brig_jailed || exit 99
echo "id $(id)"
try() { name=$1; shift; if out=$("$@" 2>&1 </dev/null); then echo "$name: WORKED $out"; else echo "$name: refused"; fi; }
try su su -c id root
try mount mount -t tmpfs none /tmp
try nsenter nsenter -t 1 -m -- id
try chroot chroot / id
if command -v newuidmap >/dev/null; then try newuidmap newuidmap $$ 0 0 1; else echo "newuidmap: refused (absent)"; fi
if command -v sudo >/dev/null; then try sudo sudo -n id; fi
if command -v passwd >/dev/null; then try passwd passwd -d root; fi
echo "suid files: $(find /usr/bin /usr/sbin -perm -4000 2>/dev/null | wc -l)"
