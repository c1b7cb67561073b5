"""Ordinary Python that must work under brig's default seccomp policy.

Each check prints "ok <name>"; any exception fails the run. Run by
seccomp/seccomp_test.go under the filter with /usr/bin/python3.
"""
import asyncio
import ctypes
import ctypes.util
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading


def check(name):
    print("ok", name, flush=True)


def threads():
    out = []
    lock = threading.Lock()

    def work(i):
        with lock:
            out.append(i * i)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out) == [i * i for i in range(8)], out
    check("threads")


def square(x):
    return x * x


def processes():
    # fork and spawn both: spawn re-executes the interpreter, fork uses clone.
    for method in ("fork", "spawn"):
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2) as pool:
            assert pool.map(square, range(10)) == [x * x for x in range(10)]
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=q.put, args=(42,))
    p.start()
    assert q.get(timeout=10) == 42
    p.join()
    check("multiprocessing")


def subprocesses():
    out = subprocess.run(["/bin/sh", "-c", "echo hello | tr a-z A-Z"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "HELLO\n", out
    out = subprocess.check_output([sys.executable, "-c", "print(6*7)"], text=True)
    assert out == "42\n", out
    check("subprocess")


def asyncio_tcp_echo():
    async def handle(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"ping\n"
        writer.close()
        server.close()
        await server.wait_closed()
        proc = await asyncio.create_subprocess_exec("/bin/echo", "async",
                                                    stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"async\n"
        await asyncio.sleep(0.01)

    asyncio.run(main())
    check("asyncio")


def tcp_echo_threads():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100))

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(srv.getsockname(), timeout=5) as c:
        c.sendall(b"echo")
        assert c.recv(100) == b"echo"
    t.join()
    srv.close()
    a, b = socket.socketpair()
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    u.close()
    check("sockets")


def sqlite():
    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "t.db"))
        db.execute("create table t (x integer)")
        db.executemany("insert into t values (?)", [(i,) for i in range(100)])
        db.commit()
        assert db.execute("select sum(x) from t").fetchone()[0] == 4950
        db.close()
    mem = sqlite3.connect(":memory:")
    assert mem.execute("select 1+1").fetchone()[0] == 2
    check("sqlite3")


def ctypes_libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    assert libc.getpid() == os.getpid()
    buf = ctypes.create_string_buffer(16)
    libc.strcpy(buf, b"brig")
    assert buf.value == b"brig"
    # A callback makes libffi write a closure trampoline into memory.
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
    libc.qsort(arr, 5, ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
    assert list(arr) == [1, 2, 3, 4, 5]
    check("ctypes")


def files_and_misc():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "f")
        with open(p, "w") as f:
            f.write("data")
        os.chmod(p, 0o600)
        os.rename(p, p + "2")
        os.symlink(p + "2", p)
        assert open(p).read() == "data"
        os.mkfifo(os.path.join(d, "fifo"))
        assert sorted(os.listdir(d)) == ["f", "f2", "fifo"]
    assert len(os.urandom(16)) == 16
    os.sched_getaffinity(0)
    import resource
    resource.getrlimit(resource.RLIMIT_NOFILE)
    import hashlib, json, zlib, select, signal, mmap
    m = mmap.mmap(-1, 4096)
    m.write(b"x")
    m.close()
    signal.signal(signal.SIGUSR1, lambda *a: None)
    os.kill(os.getpid(), signal.SIGUSR1)
    check("misc")


if __name__ == "__main__":
    threads()
    processes()
    subprocesses()
    asyncio_tcp_echo()
    tcp_echo_threads()
    sqlite()
    ctypes_libc()
    files_and_misc()
    print("all ok", flush=True)
