"""Runs INSIDE the sandbox (copied next to the candidate's main.py). Standard library only.

It holds no secrets: inputs in, outputs out; the caller decides pass/fail.
"""

import json
import os
import sys


def _proto():
    # The protocol uses a private dup of stdout; the candidate's prints go to stderr so they cannot corrupt it.
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


def _run_forked(code, inp, timeout):
    """Run compiled `code` as __main__ in a forked child with `inp` on stdin; (stdout, returncode, timed_out).

    Forking the already-started interpreter avoids a fresh python per test (and needs no exec permission)."""
    import signal
    import time

    with open("_stdin", "w", encoding="utf-8") as f:
        f.write(inp)
    pid = os.fork()
    if pid == 0:  # child
        rc = 0
        try:
            os.setsid()
            fd_in = os.open("_stdin", os.O_RDONLY)
            fd_out = os.open("_stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd_in, 0)
            os.dup2(fd_out, 1)
            sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
            try:
                exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
            except SystemExit as e:
                rc = 0 if e.code in (None, 0) else 1
            except BaseException:  # noqa: BLE001 - the program failed
                import traceback

                traceback.print_exc()
                rc = 1
            sys.stdout.flush()
        finally:
            os._exit(rc)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.005)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        return "", None, True
    with open("_stdout", "rb") as f:
        out = f.read().decode("utf-8", "replace")
    return out, (os.waitstatus_to_exitcode(status) if status is not None else None), False


def stdio(proto):
    job = json.load(open("_job.json"))
    src = open("main.py", encoding="utf-8").read()
    try:
        code = compile(src, "main.py", "exec")
    except (SyntaxError, ValueError) as e:
        for _ in job["inputs"]:
            proto.write(json.dumps({"stdout": "", "returncode": 1, "timeout": False, "error": str(e)[:200]}) + "\n")
        return
    for inp in job["inputs"]:
        out, rc, timed_out = _run_forked(code, inp, job["test_timeout_s"])
        proto.write(json.dumps({"stdout": out, "returncode": rc, "timeout": timed_out}) + "\n")


def serve(proto):
    import ast

    src = open("main.py", encoding="utf-8").read()
    ns = {"__name__": "__candidate__"}
    try:
        exec(compile(src, "main.py", "exec"), ns)
    except BaseException as e:  # noqa: BLE001 - report any failure to load, including SystemExit
        proto.write(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"[:500]}) + "\n")
        return
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        try:
            parts = req["fn"].split(".")
            fn = ns[parts[0]]
            for part in parts[1:]:
                if isinstance(fn, type):  # "Solution.method": LeetCode classes are instantiated first
                    fn = fn()
                fn = getattr(fn, part)
            args, kwargs = ast.literal_eval(req["args"]), ast.literal_eval(req["kwargs"])
            out = {"ok": True, "result": repr(fn(*args, **kwargs))}
        except BaseException as e:  # noqa: BLE001
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"[:500]}
        proto.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    p = _proto()
    {"stdio": stdio, "serve": serve}[sys.argv[1]](p)
