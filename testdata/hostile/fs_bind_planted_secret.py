# Issue 16, two jails: the first plants out/secret -> a 0644 file inside
# root's 0700 home (the bait's secret file); the second is given
# out/secret as a read-only bind. Opened as root, the bind reached a file
# the jail's user could never open through the 0700 directory. A symlink
# that anyone but root owns is refused in a bind source.
# config: then-bind=secret:/s
# expect: setup-error-contains=/secret is a symlink to
# expect: setup-error-contains=follow
brig_jailed()
if os.environ.get("BRIG_STEP") == "1":
    os.symlink(os.environ["BAIT_SECRET_FILE"], "/out/secret")
    print("planted")
    sys.exit(0)
print("SECRET READ:", open("/s").read().strip())
