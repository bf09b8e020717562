"""A verl run stops whole (grlo.train.verl.session): a stand-in for main_ppo starts a "Ray worker" in a process group of
its own (as Ray does) that would go on writing into the run's directory; the launcher is then stopped the ways a user
or a scheduler stops it (SIGTERM, SIGINT, SIGKILL, a normal exit that leaves a worker behind). Nothing of the run may
keep running: a rerun would otherwise share its checkpoint directory with the old workers (two writers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# main_ppo's stand-in: a worker in its own process group that appends to a file every 50 ms, then (unless told to
# exit) waits forever like a training driver
FAKE_MAIN = textwrap.dedent("""
    import os, subprocess, sys, time
    w = subprocess.Popen([sys.executable, "-c",
        "import os, time\\nos.setpgid(0, 0)\\nwhile True:\\n    open(%r, 'a').write('x')\\n    time.sleep(0.05)"
        % sys.argv[1]], start_new_session=False)
    open(sys.argv[2], "w").write(str(w.pid))
    if sys.argv[3] == "exit":
        sys.exit(3)
    while True:
        time.sleep(1)
""")

# the launcher side: grlo's call, as train-grlo makes it through launch.run_verl(cpu=True)
LAUNCHER = textwrap.dedent("""
    import sys
    from grlo.train.verl import launch
    rc = launch.run_verl([sys.executable, sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]], {}, 1, 1, 6379, None,
                         cpu=True)
    print("rc", rc)
    sys.exit(rc)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path: Path, mode: str):
    (tmp_path / "main.py").write_text(FAKE_MAIN)
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    out, pidfile = tmp_path / "writes", tmp_path / "worker.pid"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "launcher.py"), str(tmp_path / "main.py"), str(out),
                             str(pidfile), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text() and (out.exists() or mode == "exit")) and time.monotonic() < end:
        time.sleep(0.05)
    assert pidfile.exists(), proc.communicate(timeout=30)
    return proc, out, int(pidfile.read_text())


def _assert_no_writer(out: Path, worker: int) -> None:
    end = time.monotonic() + 15
    while _alive(worker) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived the run"
    size = lambda: out.stat().st_size if out.exists() else 0  # noqa: E731
    before = size()
    time.sleep(0.3)
    assert size() == before, "something still writes into the run's directory"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_launcher_stops_every_process_of_the_run(tmp_path, sig):
    proc, out, worker = _start(tmp_path, "wait")
    assert _alive(worker)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "stopped by signal" in err and "Traceback" not in err
    _assert_no_writer(out, worker)


def test_a_killed_launcher_takes_the_run_down_with_it(tmp_path):
    """SIGKILL cannot be caught: main_ppo dies with its parent (PR_SET_PDEATHSIG). Its worker here is a plain child in
    its own group (Ray's raylet also dies with main_ppo and its workers with the raylet): only main_ppo is checked."""
    proc, out, worker = _start(tmp_path, "wait")
    mains = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if _ppid(p) == proc.pid]
    assert mains
    proc.kill()
    proc.wait(timeout=30)
    end = time.monotonic() + 15
    while any(_alive(m) for m in mains) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(_alive(m) for m in mains), "main_ppo outlived a SIGKILL of its launcher"
    os.kill(worker, signal.SIGKILL)  # the stand-in worker does not watch its parent as Ray's do


def test_what_a_finished_run_leaves_behind_is_stopped(tmp_path):
    proc, out, worker = _start(tmp_path, "exit")
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "rc 3" in stdout, err
    _assert_no_writer(out, worker)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


# the launcher, with the signal arriving inside the launch: right after the fork, once main_ppo's worker exists, and
# before call() has the process object (the window in which a default SIGTERM used to end the launcher alone and
# leave the worker writing, and holding the launcher's pipes: a make test run hung on it)
LAUNCHER_SIGNAL_IN_START = textwrap.dedent("""
    import os, signal, sys, time
    from grlo.train.verl import launch, session
    real = session.start
    def start(*a, **k):
        p = real(*a, **k)
        while not (os.path.exists(sys.argv[3]) and open(sys.argv[3]).read()):
            time.sleep(0.02)
        os.kill(os.getpid(), int(sys.argv[5]))
        time.sleep(0.2)  # a default-handled signal would have ended this process here
        return p
    session.start = start
    rc = launch.run_verl([sys.executable, sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]], {}, 1, 1, 6379, None,
                         cpu=True)
    print("rc", rc)
    sys.exit(rc)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_launch_still_stops_the_whole_run(tmp_path, sig):
    (tmp_path / "main.py").write_text(FAKE_MAIN)
    (tmp_path / "launcher.py").write_text(LAUNCHER_SIGNAL_IN_START)
    out, pidfile = tmp_path / "writes", tmp_path / "worker.pid"
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:  # files: no pipe to hold open
        proc = subprocess.Popen([sys.executable, str(tmp_path / "launcher.py"), str(tmp_path / "main.py"), str(out),
                                 str(pidfile), "wait", str(int(sig))], stdout=so, stderr=se)
        try:
            proc.wait(timeout=90)
        finally:
            worker = int(pidfile.read_text()) if pidfile.exists() and pidfile.read_text() else None
            if proc.poll() is None:
                proc.kill()
    err = (tmp_path / "stderr").read_text()
    assert worker is not None, err
    try:
        assert proc.returncode == 128 + sig, err
        assert "stopped by signal" in err and "Traceback" not in err
        _assert_no_writer(out, worker)
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
