# issue 16: a cell writes far more than a reply line may hold, with no
# newline, to its session driver's reply channel (it runs in the driver's
# process, so it can). The supervisor used to buffer all of it (3 GiB of
# RSS for 1.5 GiB written) and then wait for the jail's exit forever; now
# it reads at most session.MaxReplyLine of a line and ends the session, saying
# why, within the cell timeout.
# session: python
# config: cell-timeout=20s
# expect: cell=dead
# expect: cell-reason-contains=bad reply from the session driver
# soak: no
brig_jailed()
outs = {os.readlink("/proc/self/fd/%d" % f) for f in (1, 2)}
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        link = os.readlink("/proc/self/fd/" + name)
        flags = int(open("/proc/self/fdinfo/" + name).read().split("flags:")[1].split()[0], 8)
    except OSError:
        continue
    if link.startswith("pipe:") and link not in outs and flags & 3 == os.O_WRONLY:
        fds.append(int(name))
print("reply fds", fds, flush=True)
chunk = b"x" * (1 << 20)
for _ in range(256):
    for fd in fds:
        os.write(fd, chunk)
print("flood written", flush=True)
