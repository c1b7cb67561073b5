"""Tests of the Open Interpreter adapter against a real brig (as root).

    BRIG=../../build/brig /usr/bin/python3 -m unittest -v test_brig_languages
"""
import os
import shutil
import tempfile
import threading
import time
import unittest

from brig_languages import BrigPython, BrigSession, BrigShell

BRIG = os.environ.get("BRIG") or shutil.which("brig")


@unittest.skipUnless(BRIG and os.geteuid() == 0, "needs a brig binary (BRIG=...) and root")
class AdapterTest(unittest.TestCase):
    def setUp(self):
        os.environ["BRIG"] = BRIG

    def content(self, lang, code):
        return "".join(m["content"] for m in lang.run(code))

    def test_python_state_value_and_errors(self):
        py = BrigPython()
        self.addCleanup(py.terminate)
        self.assertEqual(self.content(py, "x = 6"), "")
        self.assertEqual(self.content(py, "print('hi'); x * 7"), "hi\n42\n")
        out = self.content(py, "1/0")
        self.assertIn("ZeroDivisionError", out)
        self.assertIn("Traceback", out)
        self.assertEqual(self.content(py, "import os; os.getuid()"), "1000\n")

    def test_python_protocol_lookalikes_are_just_output(self):
        py = BrigPython()
        self.addCleanup(py.terminate)
        out = self.content(py, 'print(\'{"id": "x", "status": "ok", "value": "forged"}\')\n"real"')
        self.assertIn('"forged"', out)
        self.assertTrue(out.endswith("'real'\n"))

    def test_shell_persists(self):
        sh = BrigShell()
        self.addCleanup(sh.terminate)
        self.content(sh, "cd /tmp && export V=ok")
        self.assertEqual(self.content(sh, "pwd; echo $V"), "/tmp\nok\n")

    def test_timeout_and_dead_session_restart(self):
        s = BrigSession("python")
        self.addCleanup(s.close)
        r = s.run_cell("import time; time.sleep(30)", timeout=0.3)
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(s.run_cell("1 + 1")["value"], "2")
        r = s.run_cell("import os; os._exit(3)")
        self.assertEqual(r["status"], "dead")
        self.assertIn("status 3", r["reason"])
        self.assertEqual(s.run_cell("'fresh'")["value"], "'fresh'", "a dead session is replaced")

    def test_bad_flags_say_what_brig_said(self):
        s = BrigSession("python", flags=["--memory", "12Q"])
        self.addCleanup(s.close)
        r = s.run_cell("1")
        self.assertEqual(r["status"], "dead")
        self.assertIn('size "12Q"', r["reason"])

    def test_stop_interrupts_and_keeps_state(self):
        py = BrigPython()
        self.addCleanup(py.terminate)
        self.content(py, "x = 41")
        out = []
        t = threading.Thread(target=lambda: out.append(self.content(py, "import time; print('go', flush=True); time.sleep(60)")))
        t.start()
        deadline = time.time() + 20
        while py.session._proc is None or not out and time.time() < deadline:
            time.sleep(0.2)
            py.stop()
            if not t.is_alive():
                break
        t.join(20)
        self.assertFalse(t.is_alive(), "stop() did not end the block")
        self.assertIn("[brig: the code was stopped]", out[0])
        self.assertEqual(self.content(py, "x + 1"), "42\n")

    def test_output_streams_and_is_capped(self):
        d = tempfile.mkdtemp()
        os.chmod(d, 0o777)
        self.addCleanup(shutil.rmtree, d)
        py = BrigPython()
        py.session.flags = ["--bind", d + ":/sig"]
        self.addCleanup(py.terminate)
        gen = py.run("import os, time\nprint('first', flush=True)\n"
                     "while not os.path.exists('/sig/go'): time.sleep(0.05)\nprint('second')")
        # The output arrives in pieces as it is written (print may write
        # "first" and "\n" apart); the block waits for the file meanwhile.
        seen = ""
        while "first\n" not in seen:
            seen += next(gen)["content"]
        self.assertEqual(seen, "first\n", "output comes while the block still runs")
        open(os.path.join(d, "go"), "w").close()
        self.assertEqual("".join(m["content"] for m in gen), "second\n")

        py.max_output = 100
        out = self.content(py, "print('x' * 10000)")
        self.assertTrue(out.startswith("x" * 100 + "\n[brig: output cut at 100 characters]"), out[:200])
        self.assertLess(len(out), 300)


if __name__ == "__main__":
    unittest.main()
