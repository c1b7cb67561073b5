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
"""

import json
import os
import shlex
import subprocess
import threading
import uuid

__all__ = ["BrigSession", "BrigPython", "BrigShell"]


class BrigSession:
    """One jailed interpreter behind `brig session KIND --jsonl`."""

    def __init__(self, kind, brig=None, flags=None):
        self.kind = kind
        self.brig = brig or os.environ.get("BRIG", "brig")
        self.flags = flags if flags is not None else shlex.split(os.environ.get("BRIG_FLAGS", ""))
        self._proc = None
        self._lock = threading.Lock()

    def _start(self):
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [self.brig, "session", self.kind, "--jsonl", *self.flags],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self._proc

    def run_cell(self, code, timeout=None):
        """Run one cell and return brig's result as a dict (see the README)."""
        with self._lock:
            proc = self._start()
            req = {"id": uuid.uuid4().hex, "code": code}
            if timeout is not None:
                req["timeout"] = f"{timeout}s"
            try:
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (BrokenPipeError, OSError) as e:
                line = ""
                err = str(e)
            else:
                err = "brig session ended"
            if not line:
                self.close()
                return {"id": req["id"], "status": "dead", "stdout": "", "stderr": "",
                        "value": None, "error": None, "exit_code": None, "reason": err}
            result = json.loads(line)
            if result.get("status") == "dead":
                self.close()  # the next cell starts a fresh jail
            return result

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


def _console(result):
    """Turn a brig result into Open Interpreter's LMC console messages."""
    out = result.get("stdout", "") + result.get("stderr", "")
    if result.get("value") is not None:
        out += result["value"] + "\n"
    error = result.get("error")
    if error:
        out += error.get("traceback") or f'{error.get("type")}: {error.get("message")}\n'
    status = result.get("status")
    if status == "timeout":
        out += "[brig: the code timed out and was interrupted]\n"
    elif status == "dead":
        out += f'[brig: the jail ended ({result.get("reason")}); state was lost]\n'
    if result.get("stdout_truncated") or result.get("stderr_truncated"):
        out += "[brig: output was cut at the limit]\n"
    if out:
        yield {"type": "console", "format": "output", "content": out}


class _BrigLanguage:
    kind = None
    timeout = 120  # seconds per code block

    def __init__(self, computer=None):
        self.computer = computer
        self.session = BrigSession(self.kind)

    def run(self, code):
        """Generator of LMC messages, as Open Interpreter expects."""
        yield from _console(self.session.run_cell(code, timeout=self.timeout))

    def stop(self):
        # A running block is bounded by its timeout; stopping starts afresh.
        self.session.close()

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
