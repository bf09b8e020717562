"""The long-lived sandboxed workers (forkserver) that run HumanEval+/MBPP+ programs: isolation, clean state between
jobs, limits, and what crosses the boundary."""

import os
import socket
import threading
import uuid

import pytest

from grlo.errors import GrloError
from grlo.eval import _runner, sandbox

SECRETS = {"HF_TOKEN": "hf_fake_h3_secret", "OPENAI_API_KEY": "sk-fake-h3-secret", "HTTPS_PROXY": "http://proxy:3128",
           "http_proxy": "http://proxy:3128", "HOME": "/root-of-the-caller"}

needs_ns = pytest.mark.skipif(not sandbox.namespaces_available(), reason="no namespaces here: weaker isolation only")


@pytest.fixture(scope="module")
def pool():
    with sandbox.WorkerPool(1, sandbox.CallLimits(mem_mb=1024)) as p:
        yield p


def call(pool, code, inputs=((),), limit=2.0, deadline=5.0, entry="f"):
    res = pool.run_calls(code, entry, [{"inputs": [list(i) for i in inputs], "time_limits": [limit] * len(inputs),
                                        "deadline_s": deadline}])
    return None if res is None else res[0]


def outs(res):
    return [r.get("out", r.get("error")) for r in res["records"] if "i" in r]


def test_plain_values_round_trip(pool):
    res = call(pool, "def f(x):\n    return x\n", [([1, (2, 3.5)],), ({"a": {1, 2}, 3: b"x"},), (float("inf"),),
                                                     (frozenset([1]),), (complex(1, -2),), (None,), (True,)])
    assert outs(res) == [[1, (2, 3.5)], {"a": {1, 2}, 3: b"x"}, float("inf"), frozenset([1]), complex(1, -2), None, True]
    assert type(outs(res)[0][1]) is tuple and res["records"][-1] == {"done": True} and not res["killed"]


def test_environment_has_no_secrets_proxies_or_home(pool, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    with sandbox.WorkerPool(1) as fresh:  # started after the secrets were set in this process
        env = outs(call(fresh, "import os\ndef f():\n    return dict(os.environ)\n"))[0]
    assert not set(SECRETS) & set(env), env
    assert not any(v in str(env) for v in SECRETS.values())
    assert not any("proxy" in k.lower() or "token" in k.lower() or "key" in k.lower() for k in env)


@needs_ns
def test_local_listener_is_unreachable(pool):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(1.5)
    port = srv.getsockname()[1]
    got = []
    t = threading.Thread(target=lambda: got.append(_accept(srv)))
    t.start()
    code = ("import socket\ndef f():\n    try:\n        s = socket.create_connection(('127.0.0.1', %d), timeout=1)\n"
            "        s.sendall(b'leak')\n        return 'connected'\n    except OSError as e:\n"
            "        return 'refused'\n" % port)
    try:
        assert outs(call(pool, code)) == ["refused"]
    finally:
        t.join()
        srv.close()
    assert got == [None]  # the listener saw no connection


def _accept(srv):
    try:
        conn, _ = srv.accept()
        conn.close()
        return "accepted"
    except OSError:
        return None


@needs_ns
def test_writes_only_in_its_scratch_directory_which_does_not_survive(pool):
    target = f"/tmp/grlo_h3_{uuid.uuid4().hex}"
    code = ("import os\ndef f(path):\n    try:\n        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)\n"
            "        os.write(fd, b'x')\n        return 'written'\n    except OSError as e:\n        return 'denied'\n")
    # /tmp is the sandbox's own; the interpreter's directories, its runner and the rest of the root are read-only
    lib = os.path.dirname(os.__file__) + f"/grlo_h3_{uuid.uuid4().hex}"
    assert outs(call(pool, code, [(target,), ("local_file",), ("sub",), (lib,), ("/opt/grlo/_runner.py",),
                                  (os.path.expanduser("~/grlo_h3_x"),), ("/grlo_h3_x",)])) == \
        ["written", "written", "written", "denied", "denied", "denied", "denied"]
    assert not os.path.exists(target) and not os.path.exists(lib)
    # the next job starts in an empty scratch directory, even after one that locked its files away
    lock = ("import posix, os\ndef f():\n    os.makedirs('d/e')\n    open_ = os.open('d/e/x', os.O_WRONLY | os.O_CREAT)\n"
            "    posix.chmod('d/e', 0)\n    posix.chmod('d', 0)\n    return os.listdir('.')\n")
    assert outs(call(pool, lock)) == [["d"]]
    assert outs(call(pool, "import os\ndef f():\n    return os.listdir('.')\n")) == [[]]


@needs_ns
def test_processes_left_behind_are_killed_before_the_next_job(pool):
    code = ("import posix, time\ndef f():\n    if posix.fork() == 0:\n        posix.setsid()\n"
            "        if posix.fork() == 0:\n            time.sleep(60)\n        posix._exit(0)\n    return 1\n")
    assert outs(call(pool, code)) == [1]
    n = outs(call(pool, "import os\ndef f():\n    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"))
    assert len(n[0]) == 3, n  # the namespace's init, the forkserver and this job


def test_per_call_time_limit_and_deadline(pool):
    res = call(pool, "import time\ndef f(t):\n    time.sleep(t)\n    return t\n", [(0.01,), (3,), (0.02,)], limit=0.5)
    assert outs(res) == [0.01, "_Timeout", 0.02] and not res["killed"]
    res = call(pool, "while True:\n    pass\n", limit=1, deadline=1.5)
    assert res["killed"] == "deadline" and res["records"] == []
    assert outs(call(pool, "def f():\n    return 'alive'\n")) == ["alive"]  # the worker survives


def test_memory_limit(pool):
    res = call(pool, "def f():\n    x = bytearray(3 << 30)\n    return len(x)\n")
    assert outs(res) == ["MemoryError"]


def test_killing_its_worker_only_fails_its_own_job(pool):
    res = call(pool, "import posix, os, signal\ndef f():\n    posix.kill(os.getppid(), signal.SIGKILL)\n    return 1\n")
    assert res is None or not any("out" in r for r in res["records"])
    assert outs(call(pool, "def f():\n    return 2\n")) == [2]  # a fresh worker took its place


def test_only_plain_data_crosses_the_boundary(pool):
    code = ("import numpy as np, collections\nclass Eq:\n    def __eq__(self, o):\n        return True\n"
            "class I(int):\n    def __eq__(self, o):\n        return True\n"
            "def f(k):\n    return [Eq(), I(7), np.float64(0.5), collections.Counter('aa'), f][k]\n")
    res = call(pool, code, [(0,), (1,), (2,), (3,), (4,)])
    eq, i7, npf, counter, fn = outs(res)
    assert eq.startswith("unencodable") and fn.startswith("unencodable")
    assert i7 == 7 and i7 != 8 and type(i7) is not int and isinstance(i7, int)  # value kept, __eq__ dropped
    assert npf == 0.5 and type(npf).__name__ == "float64" and counter == {"a": 2}


def test_encode_refuses_cycles_and_decode_rejects_unknown_tags():
    x = []
    x.append(x)
    with pytest.raises((_runner.Unencodable, RecursionError)):
        _runner.encode(x)
    with pytest.raises(ValueError):
        _runner.decode({"zz": 1})


def test_weaker_isolation_stops_with_one_line_unless_allowed(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_mode", lambda: "process_group")
    with pytest.raises(GrloError) as e:
        sandbox.require_isolation(False)
    msg = str(e.value)
    assert "\n" not in msg and "sandbox.allow_weaker: true" in msg and "namespaces" in msg
    assert sandbox.require_isolation(True) == "process_group"


def test_process_group_worker_runs_and_scrubs_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_h3_secret")
    with sandbox.WorkerPool(1, isolate=False) as weak:
        assert weak.isolation == "process_group"
        res = call(weak, "import os\ndef f(x):\n    return [x * 2, 'HF_TOKEN' in os.environ, os.getuid()]\n", [(21,)])
    doubled, sees_token, uid = outs(res)[0]
    assert doubled == 42 and not sees_token
    if os.geteuid() == 0:
        assert uid == sandbox.NOBODY


@needs_ns
def test_credential_files_of_the_caller_are_hidden(monkeypatch):
    import shutil
    import tempfile
    from pathlib import Path

    tmp_path = Path(tempfile.mkdtemp(prefix="grlo_h3_"))  # under /tmp: reachable for nobody (pytest's is 0700)
    hf_home = tmp_path / "hf"
    hf_home.mkdir()
    (hf_home / "token").write_text("hf_fake_h3_secret")
    os.chmod(tmp_path, 0o755)
    os.chmod(hf_home, 0o755)
    os.chmod(hf_home / "token", 0o644)  # readable by anyone, also by the sandbox's nobody
    monkeypatch.setenv("HF_HOME", str(hf_home))
    code = ("import os\ndef f(p):\n    try:\n        fd = os.open(p, os.O_RDONLY)\n        return os.read(fd, 100)\n"
            "    except OSError as e:\n        return type(e).__name__\n")
    (tmp_path / "other").write_text("visible")
    os.chmod(tmp_path / "other", 0o644)
    with sandbox.WorkerPool(1) as p:  # nothing of the host's /tmp exists inside, readable or not
        got = outs(call(p, code, [(str(hf_home / "token"),), (str(tmp_path / "other"),)]))
    assert got == ["FileNotFoundError", "FileNotFoundError"], got
    with sandbox.CallSession(code.replace("def f", "def g"), sandbox.Limits(timeout_s=5, mem_mb=512)) as s:
        assert s.call("g", str(hf_home / "token")) == "FileNotFoundError"
    shutil.rmtree(tmp_path)


def test_large_outputs_come_back_and_a_flood_is_cut():
    with sandbox.WorkerPool(1, sandbox.CallLimits(mem_mb=1024, output_mb=8)) as p:
        res = call(p, "def f(n):\n    return list(range(n))\n", [(300_000,), (300_000,)])
        assert [len(o) for o in outs(res)] == [300_000, 300_000] and not res["killed"]  # ~4 MB
        res = call(p, "def f():\n    return 'x' * (12 << 20)\n")
        assert res["killed"] == "output too large" and outs(res) == []
        assert outs(call(p, "def f():\n    return 3\n")) == [3]
