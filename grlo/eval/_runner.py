"""Runs INSIDE the sandbox (copied next to the candidate's main.py). Standard library only.

It holds no secrets: inputs in, outputs out; the caller decides pass/fail.
"""

import json
import os
import subprocess
import sys


def _proto():
    # The protocol uses a private dup of stdout; the candidate's prints go to stderr so they cannot corrupt it.
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


def stdio(proto):
    job = json.load(open("_job.json"))
    for inp in job["inputs"]:
        try:
            r = subprocess.run([sys.executable, "-I", "main.py"], input=inp.encode(), capture_output=True,
                               timeout=job["test_timeout_s"])
            rec = {"stdout": r.stdout.decode("utf-8", "replace"), "returncode": r.returncode, "timeout": False}
        except subprocess.TimeoutExpired:
            rec = {"stdout": "", "returncode": None, "timeout": True}
        proto.write(json.dumps(rec) + "\n")


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
