"""A client of brig serve (docs/api.md), standard library only.

    from brig_client import Client
    c = Client("unix:///run/brig/brig.sock", token)
    print(c.run(language="python", code="print(6*7)")["stdout"])
    sb = c.create_sandbox()["id"]
    cx = c.create_context(sb, "python")["id"]
    for ev in c.execute(sb, cx, "print(1)", stream=True):
        print(ev)
"""

import http.client
import json
import socket
import urllib.parse

__all__ = ["Client", "BrigError"]

NDJSON = "application/x-ndjson"

# A streamed line longer than this is refused: the server's own events are
# one chunk of output (at most a pipe's worth) or a result.
MAX_EVENT_LINE = 64 << 20


class BrigError(Exception):
    """An error answer of the server: status, code, message, quota, retry_after."""

    def __init__(self, status, code, message, quota=None, retry_after=None):
        super().__init__("%d %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.quota = quota
        self.retry_after = retry_after


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("brig", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    """url: unix:///PATH, http://HOST:PORT or https://HOST:PORT."""

    def __init__(self, url, token, timeout=300):
        self._url = url
        self._token = token
        self._timeout = timeout
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("unix", "http", "https"):
            raise ValueError("url %r: want unix:///PATH, http://HOST:PORT or https://HOST:PORT" % url)
        self._parts = u

    def _connection(self):
        u = self._parts
        if u.scheme == "unix":
            return _UnixConnection(u.path, self._timeout)
        if u.scheme == "https":
            return http.client.HTTPSConnection(u.netloc, timeout=self._timeout)
        return http.client.HTTPConnection(u.netloc, timeout=self._timeout)

    def _request(self, method, path, body=None, raw=None, stream=False):
        conn = self._connection()
        headers = {"Authorization": "Bearer " + self._token}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if stream:
            headers["Accept"] = NDJSON
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        if resp.status >= 400:
            payload = resp.read()
            conn.close()
            try:
                err = json.loads(payload)["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_%d" % resp.status, "message": payload[:200].decode("utf-8", "replace")}
            retry = resp.getheader("Retry-After")
            raise BrigError(resp.status, err.get("code"), err.get("message"), err.get("quota"),
                            int(retry) if retry and retry.isdigit() else None)
        return conn, resp

    def _json(self, method, path, body=None):
        conn, resp = self._request(method, path, body)
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    def _events(self, method, path, body):
        conn, resp = self._request(method, path, body, stream=True)
        try:
            while True:
                line = resp.readline(MAX_EVENT_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_EVENT_LINE:
                    raise BrigError(0, "bad_stream", "an event line longer than %d bytes" % MAX_EVENT_LINE)
                yield json.loads(line)
        finally:
            conn.close()

    def _execution(self, path, body, stream):
        if stream:
            return self._events("POST", path, body)
        return self._json("POST", path, body)

    # Health and runs.
    def health(self):
        return self._json("GET", "/v1/health")

    def run(self, command=None, language=None, code=None, stdin=None, timeout=None, memory=None, template=None, stream=False):
        """A one-shot run: the result with stdout and stderr, or with
        stream=True an iterator of events ending with {"type": "result"}."""
        body = _drop_none(command=command, language=language, code=code, stdin=stdin, timeout=timeout, memory=memory, template=template)
        return self._execution("/v1/runs", body, stream)

    # Sandboxes.
    def create_sandbox(self, template=None, workspace_bytes=None, workspace_inodes=None):
        return self._json("POST", "/v1/sandboxes", _drop_none(template=template, workspace_bytes=workspace_bytes, workspace_inodes=workspace_inodes))

    def list_sandboxes(self):
        return self._json("GET", "/v1/sandboxes")["sandboxes"]

    def get_sandbox(self, sandbox):
        return self._json("GET", "/v1/sandboxes/" + _seg(sandbox))

    def delete_sandbox(self, sandbox):
        return self._json("DELETE", "/v1/sandboxes/" + _seg(sandbox))

    # Contexts.
    def create_context(self, sandbox, language="python"):
        return self._json("POST", "/v1/sandboxes/%s/contexts" % _seg(sandbox), {"language": language})

    def execute(self, sandbox, context, code, timeout=None, stream=False):
        path = "/v1/sandboxes/%s/contexts/%s/execute" % (_seg(sandbox), _seg(context))
        return self._execution(path, _drop_none(code=code, timeout=timeout), stream)

    def interrupt(self, sandbox, context):
        return self._json("POST", "/v1/sandboxes/%s/contexts/%s/interrupt" % (_seg(sandbox), _seg(context)), {})

    def delete_context(self, sandbox, context):
        return self._json("DELETE", "/v1/sandboxes/%s/contexts/%s" % (_seg(sandbox), _seg(context)))

    # Processes.
    def process(self, sandbox, command, stdin=None, timeout=None, memory=None, stream=False):
        body = _drop_none(command=command, stdin=stdin, timeout=timeout, memory=memory)
        return self._execution("/v1/sandboxes/%s/processes" % _seg(sandbox), body, stream)

    def start_process(self, sandbox, command, stdin=None, timeout=None, memory=None):
        """A background process: returns {"id": ...} at once."""
        body = _drop_none(command=command, stdin=stdin, timeout=timeout, memory=memory)
        body["background"] = True
        return self._json("POST", "/v1/sandboxes/%s/processes" % _seg(sandbox), body)

    def write_stdin(self, sandbox, process, data=None, eof=False):
        return self._json("POST", "/v1/sandboxes/%s/processes/%s/stdin" % (_seg(sandbox), _seg(process)), _drop_none(data=data, eof=eof))

    def signal(self, sandbox, process, signal="TERM"):
        return self._json("POST", "/v1/sandboxes/%s/processes/%s/signal" % (_seg(sandbox), _seg(process)), {"signal": signal})

    def wait(self, sandbox, process, stream=False):
        return self._execution("/v1/sandboxes/%s/processes/%s/wait" % (_seg(sandbox), _seg(process)), {}, stream)

    def delete_process(self, sandbox, process):
        return self._json("DELETE", "/v1/sandboxes/%s/processes/%s" % (_seg(sandbox), _seg(process)))

    # Files.
    def _file_path(self, sandbox, path):
        return "/v1/sandboxes/%s/files/%s" % (_seg(sandbox), urllib.parse.quote(path))

    def read_file(self, sandbox, path):
        conn, resp = self._request("GET", self._file_path(sandbox, path))
        try:
            return resp.read()
        finally:
            conn.close()

    def list_files(self, sandbox, path=""):
        return self._json("GET", self._file_path(sandbox, path.rstrip("/") + "/"))["entries"]

    def write_file(self, sandbox, path, data):
        if isinstance(data, str):
            data = data.encode()
        conn, resp = self._request("PUT", self._file_path(sandbox, path), raw=data)
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    def stat_file(self, sandbox, path):
        """{"type": "file"|"directory", "size": N} or None when absent."""
        try:
            conn, resp = self._request("HEAD", self._file_path(sandbox, path))
        except BrigError as e:
            if e.status == 404:
                return None
            raise
        try:
            resp.read()
            return {"type": resp.getheader("X-Brig-File-Type"), "size": int(resp.getheader("Content-Length") or 0)}
        finally:
            conn.close()

    def delete_file(self, sandbox, path):
        return self._json("DELETE", self._file_path(sandbox, path))


def _seg(s):
    return urllib.parse.quote(s, safe="")


def _drop_none(**kw):
    return {k: v for k, v in kw.items() if v is not None}
