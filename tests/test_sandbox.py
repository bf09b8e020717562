"""Hostile completions: each must be marked failed, must not hang the run and must leave the host untouched."""

import os
import threading
import time
import uuid

import pytest

from grlo.eval import code_exec, sandbox
from grlo.eval.sandbox import Limits

PROBLEM = {
    "task_id": "T/0",
    "entry_point": "add",
    "problem": 'def add(a, b):\n    """Return a + b."""\n',
    "test": "SECRET_EXPECTED = 1234567\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n"
            "    assert candidate(1000000, 234567) == SECRET_EXPECTED\n    assert candidate(-1, 1) == 0\n",
}
FAST = Limits(timeout_s=5, test_timeout_s=3, mem_mb=512)


def check(code, limits=FAST):
    t0 = time.monotonic()
    ok, detail = code_exec.check_function_tests(PROBLEM, code, limits)
    return ok, detail, time.monotonic() - t0


def test_correct_solution_passes():
    ok, detail, _ = check("def add(a, b):\n    return a + b\n")
    assert ok, detail


def test_wrong_solution_fails():
    ok, _, _ = check("def add(a, b):\n    return a - b\n")
    assert not ok


def test_early_exit_zero_fails():
    ok, _, _ = check("import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n")
    assert not ok
    ok, _, _ = check("import os\ndef add(a, b):\n    os._exit(0)\n")
    assert not ok


def test_kill_parent_fails_and_host_survives():
    import subprocess

    bystander = subprocess.Popen(["sleep", "30"])  # a host process of the same user
    try:
        ok, _, dt = check("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\ndef add(a, b):\n    return a + b\n")
        assert not ok and dt < 10
        ok, _, dt = check("import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGTERM)\n    return a + b\n")
        assert not ok and dt < 10
        # kill(-1) signals everything the program may signal: inside its PID namespace, nothing of the host.
        _, _, dt = check("import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return a + b\n")
        assert dt < 10
        if sandbox.namespaces_available():
            assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_fork_bomb_is_contained():
    # Its processes carry a name of their own (comm, inherited by fork), so other tests' processes running beside this
    # one (pytest-xdist, Snakemake jobs) cannot make it fail or pass: a host-wide process count did, in CI.
    name = "bomb" + uuid.uuid4().hex[:11]
    code = (f"import os\nopen('/proc/self/comm', 'w').write('{name}')\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n")
    seen, stop = [0], threading.Event()

    def watch():  # the host's view of the bomb while it runs, so the test cannot pass on a bomb that never went off
        while not stop.is_set():
            seen[0] = max(seen[0], _named(name))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ok, _, dt = check(code)
    finally:
        stop.set()
        watcher.join()
    assert not ok and dt < 10
    assert seen[0] >= 2  # it did fork
    deadline = time.monotonic() + 10  # the kernel needs a moment to reap a killed namespace
    while _named(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _named(name) == 0  # nothing of it left running


def test_unbounded_allocation_fails():
    ok, _, dt = check("def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(10**7))\n")
    assert not ok and dt < 10


def test_sleep_forever_is_killed_on_time():
    ok, _, dt = check("import time\ndef add(a, b):\n    time.sleep(10**6)\n", Limits(timeout_s=2, mem_mb=512))
    assert not ok and dt < 5


def test_sleep_forever_in_a_detached_grandchild_is_killed():
    marker = f"/tmp/grlo_sbx_{uuid.uuid4().hex}"
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(3)\n"
            f"        open('{marker}', 'w').write('escaped')\n    os._exit(0)\ndef add(a, b):\n    return a + b\n")
    check(code, Limits(timeout_s=1.5, mem_mb=512))
    time.sleep(4)
    assert not os.path.exists(marker)


def test_write_outside_its_directory_is_blocked():
    # /tmp inside is the sandbox's own (it exists, writes land in its tmpfs); the host's /tmp never sees them, and a
    # directory the interpreter is read from is read-only
    target = f"/tmp/grlo_sbx_evil_{uuid.uuid4().hex}"
    code = f"open('{target}', 'w').write('x')\ndef add(a, b):\n    return a + b\n"
    ok, detail, _ = check(code)
    if not sandbox.namespaces_available():
        pytest.skip("no user namespaces here: the filesystem is not protected")
    assert not os.path.exists(target)
    assert ok, detail
    lib = os.path.dirname(os.__file__) + f"/grlo_sbx_evil_{uuid.uuid4().hex}"
    ok, detail, _ = check(f"open('{lib}', 'w').write('x')\ndef add(a, b):\n    return a + b\n")
    assert not os.path.exists(lib)
    assert not ok and "load failed" in detail


def test_reading_test_secrets_gets_nothing():
    # The test file never enters the sandbox: a completion that searches for it finds no expected values.
    code = ("import glob, os\nfound = ''\nfor p in glob.glob('**/*', recursive=True):\n    try:\n"
            "        found += open(p).read()\n    except Exception:\n        pass\n"
            "def add(a, b):\n    return 1234567 if 'SECRET_EXPECTED' in found else 0\n")
    ok, _, _ = check(code)
    assert not ok


def test_patching_the_harness_cannot_fake_a_pass():
    code = ("import builtins, sys\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
            "sys.modules['__main__'].__dict__['check'] = lambda c: None\n"
            "import os\nos.write(1, b'{\"ok\": true, \"result\": \"5\"}\\n')\n"
            "def add(a, b):\n    return 5\n")
    ok, _, _ = check(code)
    assert not ok


def test_network_is_unreachable():
    if not sandbox.namespaces_available():
        pytest.skip("no network namespace here")
    code = ("import socket\ndef add(a, b):\n    try:\n        socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
            "        return 'net'\n    except OSError:\n        return a + b\n")
    ok, detail, _ = check(code)
    assert ok, detail


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("GRLO_TEST_TOKEN", "s3cr3t")
    with sandbox.CallSession("import os\ndef env():\n    return sorted(os.environ)\n", FAST) as s:
        names = s.call("env")
    assert "GRLO_TEST_TOKEN" not in names and "HF_TOKEN" not in names


def test_stdio_runs_and_compares():
    code = "n = int(input())\nprint(n * 2)\n"
    ok, detail = code_exec.check_stdio_tests(code, [{"input": "3\n", "output": "6\n"}, {"input": "5", "output": "10"}], FAST)
    assert ok, detail
    ok, _ = code_exec.check_stdio_tests(code, [{"input": "3\n", "output": "7\n"}], FAST)
    assert not ok
    ok, detail = code_exec.check_stdio_tests("while True: pass\n", [{"input": "", "output": ""}],
                                              Limits(timeout_s=3, test_timeout_s=1))
    assert not ok and "timeout" in detail


def test_outputs_match_rules():
    assert code_exec.outputs_match("1 2\n3  \n", "1 2\n3")
    assert code_exec.outputs_match("0.50\n", "0.5")
    assert not code_exec.outputs_match("1 2", "1 3")
    assert not code_exec.outputs_match("1\n2", "1")


def _named(comm):
    """How many processes on the host have this name (/proc/PID/comm)."""
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    n += f.read().strip() == comm
            except OSError:  # gone meanwhile
                pass
    return n


def test_generated_code_never_runs_as_root():
    with sandbox.CallSession("import os\ndef uid():\n    return os.getuid()\n", FAST) as s:
        uid = s.call("uid")
    if os.geteuid() == 0:
        assert uid == sandbox.NOBODY
    else:
        assert uid is not None
