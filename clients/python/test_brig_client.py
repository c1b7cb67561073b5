"""Tests of brig_client against a real brig serve on a unix socket and on
loopback TCP. BRIG names the brig binary (make clients-test builds it);
they need root, as brig serve does."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from brig_client import BrigError, Client

BRIG = os.environ.get("BRIG", "")


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@unittest.skipUnless(BRIG and os.path.exists(BRIG), "needs BRIG, the brig binary (make clients-test builds it)")
@unittest.skipUnless(os.geteuid() == 0, "needs root: brig serve mounts a tmpfs per workspace")
class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="brig-client-")
        out = subprocess.run([BRIG, "token"], check=True, capture_output=True, text=True).stdout
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        cls.token = fields["token"]
        other = dict(line.split(": ", 1) for line in subprocess.run([BRIG, "token"], check=True, capture_output=True, text=True).stdout.strip().splitlines())
        cls.other_token = other["token"]
        cls.sock = os.path.join(cls.dir, "brig.sock")
        cls.port = _free_port()
        config = os.path.join(cls.dir, "serve.yaml")
        with open(config, "w") as f:
            f.write("""
state_dir: %s/state
listen: [unix:%s, tcp:127.0.0.1:%d]
tenants:
  - {name: me, token_sha256: %s}
  - {name: other, token_sha256: %s}
templates:
  default: {memory: 256M, timeout: 20s, workspace-size: 1M}
""" % (cls.dir, cls.sock, cls.port, fields["token_sha256"], other["token_sha256"]))
        cls.server = subprocess.Popen([BRIG, "serve", "--config", config], stderr=subprocess.DEVNULL)
        cls.client = Client("unix://" + cls.sock, cls.token)
        deadline = time.time() + 20
        while True:
            try:
                cls.client.health()
                break
            except OSError:
                if time.time() > deadline or cls.server.poll() is not None:
                    raise
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=30)
        leftover = os.listdir(os.path.join(cls.dir, "state", "workspaces"))
        shutil.rmtree(cls.dir)
        assert leftover == [], leftover

    def test_run(self):
        r = self.client.run(language="python", code="print(6*7)")
        self.assertEqual(r["stdout"], "42\n")
        self.assertEqual(r["reason"], "exited")
        tcp = Client("http://127.0.0.1:%d" % self.port, self.token)
        r = tcp.run(command=["/bin/sh", "-c", "cat; exit 2"], stdin="in")
        self.assertEqual((r["stdout"], r["exit_code"]), ("in", 2))

    def test_stream(self):
        events = list(self.client.run(language="shell", code="echo a; echo b >&2; echo c", stream=True))
        self.assertEqual(events[-1]["type"], "result")
        # In order within a stream; stdout and stderr are two pipes.
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "a\nc\n")
        self.assertEqual("".join(e["data"] for e in events if e["type"] == "stderr"), "b\n")

    def test_sandbox_context_files(self):
        sb = self.client.create_sandbox(workspace_bytes="512K")["id"]
        try:
            self.client.write_file(sb, "d/in.txt", "hello")
            self.assertEqual(self.client.read_file(sb, "d/in.txt"), b"hello")
            self.assertEqual(self.client.stat_file(sb, "d/in.txt"), {"type": "file", "size": 5})
            self.assertIsNone(self.client.stat_file(sb, "nothing"))
            self.assertEqual([e["name"] for e in self.client.list_files(sb, "d")], ["in.txt"])
            cx = self.client.create_context(sb, "python")["id"]
            r = self.client.execute(sb, cx, "data = open('d/in.txt').read()\ndata.upper()")
            self.assertEqual(r["value"], "'HELLO'")
            events = list(self.client.execute(sb, cx, "print(data)", stream=True))
            # print may write the text and its newline apart: two events.
            self.assertEqual("".join(e["data"] for e in events if e["type"] == "stdout"), "hello\n")
            self.assertEqual(events[-1]["status"], "ok")
            p = self.client.process(sb, ["/bin/sh", "-c", "ls d"])
            self.assertEqual(p["stdout"], "in.txt\n")
            bg = self.client.start_process(sb, ["/bin/sh", "-c", "read l; echo got:$l"])["id"]
            self.client.write_stdin(sb, bg, "x\n", eof=True)
            self.assertEqual(self.client.wait(sb, bg)["stdout"], "got:x\n")
            events = list(self.client.wait(sb, bg, stream=True))
            self.assertEqual(events[0], {"type": "stdout", "data": "got:x\n"})
            self.client.delete_process(sb, bg)
            self.client.delete_file(sb, "d/in.txt")
            self.assertIsNone(self.client.stat_file(sb, "d/in.txt"))
            self.assertEqual(self.client.interrupt(sb, cx)["interrupted"], False)
            self.client.delete_context(sb, cx)
            self.assertEqual([s["id"] for s in self.client.list_sandboxes()], [sb])
        finally:
            self.client.delete_sandbox(sb)
        with self.assertRaises(BrigError) as e:
            self.client.get_sandbox(sb)
        self.assertEqual(e.exception.status, 404)

    def test_errors(self):
        with self.assertRaises(BrigError) as e:
            Client("unix://" + self.sock, "wrong").list_sandboxes()
        self.assertEqual((e.exception.status, e.exception.code), (401, "unauthorized"))
        sb = self.client.create_sandbox()["id"]
        try:
            with self.assertRaises(BrigError) as e:
                Client("unix://" + self.sock, self.other_token).get_sandbox(sb)
            self.assertEqual(e.exception.status, 404)
            with self.assertRaises(BrigError) as e:
                self.client.run(command=["/bin/true"], memory="1G")
            self.assertEqual(e.exception.code, "over_template_limit")
        finally:
            self.client.delete_sandbox(sb)


if __name__ == "__main__":
    unittest.main()
