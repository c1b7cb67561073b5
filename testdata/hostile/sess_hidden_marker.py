# issue 16: a cell that hides its end marker on purpose, pointing every fd
# of its stdout and stderr pipes (the driver's own copies too) at
# /dev/null. Run used to wait for the marker for good, and SIGTERM did not
# end `brig session`; now the end of a cell comes from the reply channel,
# the marker is waited for a bounded time (session.StreamSettle), and the
# cell returns with what it wrote before.
# session: python
# config: cell-timeout=5s
# expect: cell=ok
# expect: stdout-contains=before
# expect: stdout-not-contains=hidden
# soak: no
brig_jailed()
print("before", flush=True)
print("before", file=sys.stderr, flush=True)
outs = {os.readlink("/proc/self/fd/%d" % f) for f in (1, 2)}
null = os.open("/dev/null", os.O_WRONLY)
for name in os.listdir("/proc/self/fd"):
    try:
        if os.readlink("/proc/self/fd/" + name) in outs:
            os.dup2(null, int(name))
    except OSError:
        pass
print("hidden", flush=True)
