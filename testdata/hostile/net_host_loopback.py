# The host's TCP listener (on 0.0.0.0, so on loopback and every host
# address) must be out of reach: the jail's lo is its own, and no other
# interface exists. Outside addresses are unreachable; DNS fails.
# expect: reason=exited exit=0
# expect: stdout-contains=interfaces ['lo']
# expect: stdout-contains=connect 127.0.0.1 ECONNREFUSED
# expect: stdout-contains=connect ::1 ECONNREFUSED
# expect: stdout-not-contains=connect host OK
# expect: stdout-not-contains=outside OK
# expect: stdout-contains=own lo works b'ping'
# expect: stdout-contains=DONE
brig_jailed()
import socket
port = int(os.environ["BAIT_PORT"])
print("interfaces", sorted(os.listdir("/proc/sys/net/ipv4/conf")) and [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]])
def conn(addr, fam=socket.AF_INET):
    s = socket.socket(fam); s.settimeout(2)
    try:
        s.connect(addr); return s.recv(5)
    finally:
        s.close()
probe("connect 127.0.0.1", lambda: conn(("127.0.0.1", port)))
probe("connect ::1", lambda: conn(("::1", port), socket.AF_INET6))
for ip in filter(None, os.environ.get("BAIT_HOST_IPS", "").split(",")):
    probe("connect host " + ip, lambda ip=ip: conn((ip, port)))
for ip in ["10.0.0.1", "172.17.0.1", "192.168.0.1", "169.254.169.254", "8.8.8.8"]:
    probe("outside " + ip, lambda ip=ip: conn((ip, 80)))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: s.sendto(b"x", ("8.8.8.8", 53))
    finally: s.close()
probe("outside udp", udp)
probe("dns", lambda: socket.getaddrinfo("example.com", 80) and None)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.send(b"ping"); print("own lo works", a.recv(4))
print("DONE")
