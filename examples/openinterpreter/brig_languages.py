"""Open Interpreter languages that run code in brig jails.

Standard library only. Each language keeps one `brig session ... --jsonl`
process: one persistent Python (or bash) per language, in its own jail, so
variables, imports, the working directory and files persist between the
code blocks the model writes, as with Open Interpreter's own languages.

    from interpreter import interpreter
    from brig_languages import BrigPython, BrigShell

    interpreter.computer.terminate()
    interpreter.computer.languages = [BrigPython, BrigShell]
    interpreter.chat("What is 2**100? Then list the files you can see.")

Set BRIG to the brig binary (default: "brig" on PATH) and BRIG_FLAGS to
extra flags such as "--memory 256M --ro-bind /srv/data:/data".

Server mode: with BRIG_URL set (unix:///run/brig/brig.sock or
http://HOST:PORT) and BRIG_TOKEN, each language is a context of one
sandbox of a `brig serve` instead (clients/python/brig_client.py, on
PYTHONPATH or beside this repository's examples).
"""

import collections
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import uuid

__all__ = ["BrigSession", "BrigServerSession", "BrigPython", "BrigShell"]


class BrigSession:
    """One jailed interpreter behind `brig session KIND --jsonl`."""

    def __init__(self, kind, brig=None, flags=None):
        self.kind = kind
        self.brig = brig or os.environ.get("BRIG", "brig")
        self.flags = flags if flags is not None else shlex.split(os.environ.get("BRIG_FLAGS", ""))
        self._proc = None
        self._drainer = None
        self._stderr = collections.deque(maxlen=20)  # brig's own last lines, for the reason it ended
        self._lock = threading.Lock()

    def _start(self):
        if self._proc is None or self._proc.poll() is not None:
            self._stderr.clear()
            self._proc = subprocess.Popen(
                [self.brig, "session", self.kind, "--jsonl", "--quiet", *self.flags],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            self._drainer = threading.Thread(target=self._drain_stderr, args=(self._proc,), daemon=True)
            self._drainer.start()
        return self._proc

    def _drain_stderr(self, proc):
        for line in proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _ended(self, proc, why):
        """Why brig ended: what brig said on stderr, else why."""
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        said = "; ".join(l for l in self._stderr if l)
        return said or why

    def run_cell(self, code, timeout=None, on_output=None):
        """Run one cell and return brig's result as a dict (see the README).

        on_output(kind, text), when given, receives the cell's output as it
        comes ("stdout" or "stderr"), before the result.
        """
        with self._lock:
            proc = self._start()
            req = {"id": uuid.uuid4().hex, "code": code}
            if timeout is not None:
                req["timeout"] = f"{timeout}s"
            if on_output is not None:
                req["stream"] = True
            err = "brig session ended"
            line = ""
            try:
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
                while True:
                    line = proc.stdout.readline()
                    if not line:
                        break
                    msg = json.loads(line)
                    if msg.get("type") in ("stdout", "stderr") and msg.get("id") == req["id"]:
                        on_output(msg["type"], msg["data"])
                        continue
                    break
            except (BrokenPipeError, OSError) as e:
                line, err = "", str(e)
            if not line:
                reason = self._ended(proc, err)
                self.close()
                return {"id": req["id"], "status": "dead", "stdout": "", "stderr": "",
                        "value": None, "error": None, "exit_code": None, "reason": reason}
            result = json.loads(line)
            if result.get("status") == "dead":
                self.close()  # the next cell starts a fresh jail
            return result

    def interrupt(self):
        """Interrupt the running cell (SIGINT to brig); the session lives on."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    def close(self):
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            if self._drainer is not None:
                self._drainer.join(1)  # brig has exited: its stderr ends
            proc.stderr.close()


def _brig_client():
    try:
        import brig_client
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.append(os.path.join(here, "..", "..", "clients", "python"))
        import brig_client
    return brig_client


class BrigServerSession:
    """One context of a brig serve sandbox, with BrigSession's interface.

    The sandbox and the context are made at the first cell; a context that
    dies is replaced at the next (the workspace stays)."""

    def __init__(self, kind, url=None, token=None, template=None):
        self.kind = kind
        bc = _brig_client()
        self._error = bc.BrigError
        self._client = bc.Client(url or os.environ["BRIG_URL"], token or os.environ.get("BRIG_TOKEN", ""))
        self._template = template
        self._sandbox = None
        self._context = None
        self._lock = threading.Lock()

    def _ensure(self):
        if self._sandbox is None:
            self._sandbox = self._client.create_sandbox(template=self._template)["id"]
        if self._context is None:
            self._context = self._client.create_context(self._sandbox, self.kind)["id"]
        return self._sandbox, self._context

    def run_cell(self, code, timeout=None, on_output=None):
        with self._lock:
            try:
                sandbox, context = self._ensure()
                result = None
                for ev in self._client.execute(sandbox, context, code, timeout=timeout, stream=True):
                    if ev.get("type") in ("stdout", "stderr"):
                        if on_output is not None:
                            on_output(ev["type"], ev["data"])
                    elif ev.get("type") == "result":
                        result = ev
            except (self._error, OSError) as e:
                return {"id": None, "status": "dead", "stdout": "", "stderr": "", "value": None,
                        "error": None, "exit_code": None, "reason": "brig serve: %s" % e}
            if result is None:
                return {"id": None, "status": "dead", "stdout": "", "stderr": "", "value": None,
                        "error": None, "exit_code": None, "reason": "brig serve: the stream ended without a result"}
            if result.get("status") == "dead":
                try:
                    self._client.delete_context(sandbox, context)
                except (self._error, OSError):
                    pass
                self._context = None  # the next cell starts a fresh interpreter
            return result

    def interrupt(self):
        sandbox, context = self._sandbox, self._context
        if sandbox and context:
            try:
                self._client.interrupt(sandbox, context)
            except (self._error, OSError):
                pass

    def close(self):
        sandbox, self._sandbox, self._context = self._sandbox, None, None
        if sandbox:
            try:
                self._client.delete_sandbox(sandbox)
            except (self._error, OSError):
                pass


def _tail(result):
    """What follows a cell's output: its value, error and brig's notes."""
    out = ""
    if result.get("value") is not None:
        out += result["value"] + "\n"
    error = result.get("error")
    if error and result.get("status") != "canceled":
        out += error.get("traceback") or f'{error.get("type")}: {error.get("message")}\n'
    status = result.get("status")
    if status == "timeout":
        out += "[brig: the code timed out and was interrupted]\n"
    elif status == "canceled":
        out += "[brig: the code was stopped]\n"
    elif status == "dead":
        out += f'[brig: the jail ended ({result.get("reason")}); state was lost]\n'
    if result.get("stdout_truncated") or result.get("stderr_truncated"):
        out += "[brig: output was cut at the limit]\n"
    return out


def _console(result):
    """Turn a whole brig result into Open Interpreter's LMC console messages."""
    out = result.get("stdout", "") + result.get("stderr", "") + _tail(result)
    if out:
        yield {"type": "console", "format": "output", "content": out}


class _BrigLanguage:
    kind = None
    timeout = 120  # seconds per code block
    # Characters of output shown to the model per block, as Open
    # Interpreter's own terminal caps it (its max_output); the rest is
    # dropped with a note. brig's own cap (--output-limit) still bounds
    # what the jail may write.
    max_output = 2800

    def __init__(self, computer=None):
        self.computer = computer
        if os.environ.get("BRIG_URL"):
            self.session = BrigServerSession(self.kind)
        else:
            self.session = BrigSession(self.kind)
        limit = getattr(getattr(computer, "interpreter", None), "max_output", None)
        if isinstance(limit, int) and limit > 0:
            self.max_output = limit

    def run(self, code):
        """Generator of LMC messages, as Open Interpreter expects: the
        output as it comes, then the value, error and notes."""
        chunks = queue.Queue()
        shown = [0]

        def on_output(kind, text):
            room = self.max_output - shown[0]
            if room > 0:
                chunks.put(text[:room])
            if shown[0] <= self.max_output < shown[0] + len(text):
                chunks.put(f"\n[brig: output cut at {self.max_output} characters]\n")
            shown[0] += len(text)

        done = []
        worker = threading.Thread(
            target=lambda: done.append(self.session.run_cell(code, timeout=self.timeout, on_output=on_output)),
            daemon=True)
        worker.start()
        while worker.is_alive() or not chunks.empty():
            try:
                text = chunks.get(timeout=0.05)
            except queue.Empty:
                continue
            yield {"type": "console", "format": "output", "content": text}
        worker.join()
        tail = _tail(done[0]) if done else "[brig: no result]\n"
        if tail:
            yield {"type": "console", "format": "output", "content": tail}

    def stop(self):
        # Interrupt the running block, as Open Interpreter's own languages
        # do; the session and its state live on.
        self.session.interrupt()

    def terminate(self):
        self.session.close()


class BrigPython(_BrigLanguage):
    name = "python"
    aliases = ["py", "python3"]
    file_extension = "py"
    kind = "python"
    system_message = "Python runs in a jail with no network; the value of a final expression is shown."


class BrigShell(_BrigLanguage):
    name = "shell"
    aliases = ["bash", "sh", "zsh"]
    file_extension = "sh"
    kind = "shell"
    system_message = "The shell runs in a jail with no network; cd and variables persist."
