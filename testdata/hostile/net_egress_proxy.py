# Under --net proxy, whose policy even names loopback, the metadata address
# and private ranges: the jail still has no route out (a direct connect to
# the outside or the host fails), and through the proxy every CONNECT or
# plain request to loopback (the host's bait listener included), the
# metadata address, a private or IPv4-mapped address, or the host's own
# addresses is refused; the program cannot take the proxy's port; the
# proxy's own address is refused as a destination.
# config: allow=127.0.0.0/8 allow=169.254.169.254 allow=10.0.0.0/8 allow=localhost allow=[::1]
# expect: reason=exited exit=0
# expect: stdout-contains=proxy env http://127.0.0.1:3128
# expect: stdout-not-contains=direct OK
# expect: stdout-not-contains=NOT REFUSED
# expect: stdout-contains=CONNECT 127.0.0.1:443 refused
# expect: stdout-contains=CONNECT 169.254.169.254:80 refused
# expect: stdout-contains=GET http://169.254.169.254/latest/meta-data/ refused
# expect: stdout-contains=take the proxy's port EADDRINUSE
# expect: stdout-contains=DONE
brig_jailed()
import socket
port = int(os.environ["BAIT_PORT"])
print("proxy env", os.environ.get("HTTPS_PROXY"))
def conn(addr, fam=socket.AF_INET):
    s = socket.socket(fam); s.settimeout(2)
    try:
        s.connect(addr); return s.recv(5)
    finally:
        s.close()
hosts = [h for h in os.environ.get("BAIT_HOST_IPS", "").split(",") if h]
for ip in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "8.8.8.8"] + hosts:
    probe("direct " + ip, lambda ip=ip: conn((ip, port if ip == "127.0.0.1" or ip in hosts else 80)))
def ask(line):
    c = socket.create_connection(("127.0.0.1", 3128), timeout=15)
    try:
        c.sendall(line.encode())
        status = c.makefile("rb").readline().decode().strip()
    finally:
        c.close()
    return "refused" if status.startswith("HTTP/1.1 403 ") else "NOT REFUSED " + status
targets = ["127.0.0.1:443", "127.0.0.1:%d" % port, "127.0.0.1:3128", "[::1]:443", "[::ffff:127.0.0.1]:443",
           "169.254.169.254:80", "10.0.0.1:443", "localhost:443", "0.0.0.0:443"] + ["%s:443" % h for h in hosts]
for t in targets:
    try:
        print("CONNECT %s %s" % (t, ask("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t))), flush=True)
    except OSError as e:
        print("CONNECT", t, "NOT REFUSED", ename(e), flush=True)
for u, h in [("http://169.254.169.254/latest/meta-data/", "169.254.169.254"), ("http://127.0.0.1:%d/" % port, "127.0.0.1:%d" % port)]:
    try:
        print("GET %s %s" % (u, ask("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (u, h))), flush=True)
    except OSError as e:
        print("GET", u, "NOT REFUSED", ename(e), flush=True)
b = socket.socket()
probe("take the proxy's port", lambda: b.bind(("127.0.0.1", 3128)))
print("DONE")
