# brig's Python session driver: runs cells sent by the host and reports
# each result on a channel of its own, never on stdout.
# Requests arrive on fd 3 and results leave on fd 4, one JSON object per
# line, carrying the cell's nonce. After each cell the driver writes the
# nonce to stdout and to stderr, so the host knows where the cell's output
# ends; it writes it through copies of fds 1 and 2 of its own, so a cell
# that redirects its stdout (os.dup2 onto fd 1) still ends where it should.
# The host caps a reply line (session.MaxReplyLine): the texts are cut here.
import ast, json, os, resource, signal, sys, traceback

_req = os.fdopen(os.dup(3), "r", encoding="utf-8")
_resp = os.fdopen(os.dup(4), "w", encoding="utf-8")
_out, _err = os.dup(1), os.dup(2)
os.close(3)
os.close(4)  # the dups are close-on-exec: the cell's subprocesses do not get them
_MAX_REPR = 64 << 10
_MAX_TEXT = 64 << 10
_ns = {"__name__": "__main__", "__builtins__": __builtins__}


def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _run(code):
    tree = ast.parse(code, "<cell>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), _ns)
    if last is not None:
        value = eval(compile(last, "<cell>", "eval"), _ns)
        if value is not None:
            _ns["_"] = value
            r = repr(value)
            return r if len(r) <= _MAX_REPR else r[:_MAX_REPR] + "...(cut)"
    return None


def _cut(text):
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "...(cut)"


def _error(e):
    # Drop the driver's own frames: the traceback starts in the cell.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(e), e, tb))
    try:
        message = str(e)
    except BaseException:
        message = "(str() of the exception failed)"
    return {"type": _cut(type(e).__name__), "message": _cut(message), "traceback": _cut(text)}


def _serve():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in _req:
        req = json.loads(line)
        cpu0 = _cpu()
        value, error = None, None
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            value = _run(req["code"])
        except BaseException as e:  # SystemExit and KeyboardInterrupt end the cell, not the session
            error = _error(e)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        nonce = req["nonce"]
        for fd in (_out, _err):
            try:
                os.write(fd, nonce.encode())
            except OSError:
                pass  # the cell closed or blocked it: the host waits a bounded time
        _resp.write(json.dumps({"nonce": nonce, "value": value, "error": error, "cpu": _cpu() - cpu0}) + "\n")
        _resp.flush()


_serve()
