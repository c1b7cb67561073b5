# Abstract unix sockets live in the network namespace: the host's bait
# socket and brig's own host-id lease sockets must be unreachable, and
# the jail sees none of the host's unix sockets.
# expect: reason=exited exit=0
# expect: stdout-contains=connect bait ECONNREFUSED
# expect: stdout-contains=connect lease ECONNREFUSED
# expect: stdout-contains=host sockets visible 0
# expect: stdout-contains=bind bait name OK
# expect: stdout-contains=DONE
brig_jailed()
import socket
name = os.environ["BAIT_ABSTRACT"]
def conn(n):
    s = socket.socket(socket.AF_UNIX)
    try: s.connect("\0" + n)
    finally: s.close()
probe("connect bait", lambda: conn(name))
probe("connect lease", lambda: conn("brig/hostid/1500000000"))
probe("connect dbus", lambda: conn("/tmp/dbus-xyz"))
visible = [l for l in open("/proc/net/unix").read().splitlines()[1:] if name in l or "brig/hostid" in l]
print("host sockets visible", len(visible))
def squat():
    s = socket.socket(socket.AF_UNIX); s.bind("\0" + name); s.close()
probe("bind bait name", squat)  # its own namespace: a different socket
for p in ["/run/systemd/private", "/var/run/docker.sock", "/run/dbus/system_bus_socket"]:
    print(p, os.path.exists(p))
print("DONE")
