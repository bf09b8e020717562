"""A verl run's processes, started and stopped as one unit.

`main_ppo` starts its own Ray (GCS, raylet, dashboard, log monitor) and Ray starts its workers, each in a process group
of its own (`setpgid`), so neither "kill the child" nor "kill its process group" stops a run: the workers go on
training and writing checkpoints, and a rerun then shares the checkpoint directory with them (two writers). Measured
on verl 0.6.1 / Ray 2.x on CPU: a SIGTERM to the smoke rule's `snakemake` left `main_ppo` and its workers training
for 30 minutes.

What holds instead: every process of the run keeps the session that `main_ppo` opens (`start_new_session`; Ray
does not call `setsid`), so the run is "every process of that session". `call()` starts the command in a new session,
with `PR_SET_PDEATHSIG` so that even a SIGKILL of this process takes `main_ppo` (and, through it, Ray) down; SIGTERM,
SIGINT and SIGHUP to this process stop the whole session (SIGTERM, a grace period, SIGKILL) and exit 128 + the signal;
after a normal exit, whatever the run left behind in its session is stopped too.

API:
  call(cmd, env, cwd=None, stdout=None, grace_s=GRACE_S) -> int   run cmd as its own session; its exit status
  start(cmd, env, cwd=None, stdout=None) -> Popen                   the same, without waiting (the rehearsal's kill)
  members(sid) -> [pid]                                             the live processes of session sid
  stop(sid, grace_s) -> None                                        SIGTERM them all, SIGKILL what is left after grace_s
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 20.0  # what Ray needs to shut its processes down after SIGTERM on a loaded machine
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # call() blocks them around the fork; exec keeps the mask
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: signals and the final stop() still hold
        pass


def start(cmd: list[str], env: dict[str, str], cwd: str | None = None, stdout=None) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
                            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def members(sid: int) -> list[int]:
    """Live processes whose session is sid (zombies excluded: they are only waiting for their parent)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session ...
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(name))
    return out


def stop(sid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM every process of session sid, then SIGKILL those still alive after grace_s (0: SIGKILL at once)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if sig == signal.SIGTERM and grace_s <= 0:
            continue
        left = members(sid)
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        end = time.monotonic() + wait
        while left and time.monotonic() < end:
            time.sleep(0.1)
            left = members(sid)
        if not left:
            return


def call(cmd: list[str], env: dict[str, str], cwd: str | None = None, stdout=None, grace_s: float = GRACE_S) -> int:
    """Run cmd in a session of its own and wait; a forwarded signal stops the session and exits 128 + signal.

    The handlers are in place before the fork, and the forwarded signals are blocked from just before the fork until
    `proc` is known: a signal at any moment of the launch is handled with the session to stop (a default SIGTERM in
    that window would end this process and leave main_ppo's children running, holding the run's directory)."""
    caught: list[int] = []
    proc = None

    def on_signal(signum, frame):
        caught.append(signum)
        if len(caught) == 1:
            raise KeyboardInterrupt  # leave proc.wait() now; the finally below stops the session

    main = threading.current_thread() is threading.main_thread()
    before: dict = {}
    try:
        if main:
            for s in FORWARDED:
                before[s] = signal.signal(s, on_signal)
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            proc = start(cmd, env, cwd, stdout)
        finally:
            if main:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # one that came meanwhile is handled here
        proc.wait()
    except KeyboardInterrupt:
        caught = caught or [signal.SIGINT]
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        if proc is not None:
            stop(proc.pid, grace_s if proc.poll() is None or caught else min(grace_s, 5.0))
            if proc.poll() is None:
                proc.wait()
    if caught:
        where = f"session {proc.pid}" if proc is not None else "none had started"
        print(f"stopped by signal {caught[0]}: verl's processes ({where}) were stopped", file=sys.stderr)
        raise SystemExit(128 + caught[0])
    return proc.returncode
