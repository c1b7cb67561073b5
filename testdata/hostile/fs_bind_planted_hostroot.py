# Issue 16, two jails: the first, with a writable bind, plants
# out/hostroot -> /; the second is given out/hostroot as a read-only bind.
# The source was resolved on the host (EvalSymlinks) and opened as root, so
# the second jail got the host's / (its /proc, /tmp, unix sockets). A bind
# source must not pass through a symlink that anyone but root owns: the
# second jail must not be built, and say why.
# config: then-bind=hostroot:/h
# expect: setup-error-contains=/hostroot is a symlink to / owned by uid
# expect: setup-error-contains=follow
brig_jailed()
if os.environ.get("BRIG_STEP") == "1":
    os.symlink("/", "/out/hostroot")
    print("planted")
    sys.exit(0)
# Step 2 ran: show what the bind gave away.
host_pids = [p for p in os.listdir("/h/proc") if p.isdigit()]
print("HOST ROOT VISIBLE: %d processes in /h/proc" % len(host_pids))
print("bait process visible", os.environ["BAIT_PID"] in host_pids)
print("host /tmp", sorted(os.listdir("/h/tmp"))[:5])
