# Ask for many tmpfs paths and fill them all, with /tmp and the workdir:
# every Config.Tmpfs path is a directory of the jail's one scratch tmpfs,
# so together they stop at its 8 MiB (ENOSPC), not at 8 MiB each. Each
# path is empty at the start and the program's own.
# config: tmpfs=8M timeout=20s tmpfs-path=/var/a tmpfs-path=/var/b tmpfs-path=/var/c tmpfs-path=/var/d tmpfs-path=/home/brig/.cache tmpfs-path=/opt/x
# Not soaked: its tmpfs paths make a root template of its own, an fd
# the soak's warm-up may not have made before it measures.
# soak: no
# expect: reason=exited exit=0
# expect: stdout-contains=paths 6 empty and mine
# expect: stdout-matches=^total written [0-9]+ KiB within 8192$
# expect: stdout-contains=DONE
brig_jailed()
paths = ["/var/a", "/var/b", "/var/c", "/var/d", "/home/brig/.cache", "/opt/x"]
print("paths", sum(1 for p in paths if os.listdir(p) == [] and os.stat(p).st_uid == os.getuid()), "empty and mine")
files = [open(os.path.join(d, "fill"), "wb", buffering=0) for d in paths + ["/tmp", "/work"]]
chunk = b"x" * (256 << 10)
full = set()
# Round-robin, so no one directory takes the budget first.
while len(full) < len(files):
    for f in files:
        if f in full:
            continue
        try:
            f.write(chunk)
        except OSError as e:
            print(f.name, ename(e))
            full.add(f)
sizes = sum(os.fstat(f.fileno()).st_size for f in files)
print("total written %d KiB within %d" % (sizes // 1024, 8192 if sizes <= 8 << 20 else 0))
print("DONE")
