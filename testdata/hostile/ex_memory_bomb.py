# A memory bomb: the memory cgroup's OOM killer ends it (reason oom); with
# rlimits only, RLIMIT_AS makes the allocation fail inside Python.
# config: timeout=20s memory=128M
# expect: reason=oom signal=9
# expect[rlimit]: reason=exited exit=1
# expect[rlimit]: stderr-contains=MemoryError
brig_jailed()
a = []
while True:
    a.append(bytearray(8 << 20))
