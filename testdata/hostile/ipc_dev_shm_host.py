# The host's /dev/shm (with a world-readable bait file in it) must not be
# the jail's: the jail's /dev/shm is private, writable and empty.
# expect: reason=exited exit=0
# expect: stdout-contains=bait visible False
# expect: stdout-contains=devshm empty True
# expect: stdout-contains=own shm works True
# expect: stdout-contains=mqueue absent True
# expect: stdout-contains=DONE
brig_jailed()
path = os.environ["BAIT_DEVSHM"]
print("bait visible", os.path.exists(path))
print("devshm empty", os.listdir("/dev/shm") == [])
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(create=True, size=4096, name="brig-own"); m.buf[:2] = b"ok"
n = shared_memory.SharedMemory(name="brig-own"); print("own shm works", bytes(n.buf[:2]) == b"ok"); n.close(); m.close(); m.unlink()
probe("open bait by name", lambda: shared_memory.SharedMemory(name=os.path.basename(path)) and None)
print("mqueue absent", not os.path.exists("/dev/mqueue") or os.listdir("/dev/mqueue") == [])
print("DONE")
