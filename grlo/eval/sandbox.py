"""Sandbox for generated code.

Every program runs in its own temporary directory and process group with rlimits (CPU seconds, address space, file
size, process count, no core files), a scrubbed environment (no tokens, proxies or HOME) and a wall-clock deadline
that SIGKILLs the whole group. Where the kernel allows it (checked once), it also gets new PID, mount, network and
System V IPC namespaces (plus a user namespace for a non-root caller) via util-linux `unshare`: no network (only a
down loopback), the whole filesystem remounted read-only except its own directory, the caller's credential files
covered, its own /proc (it cannot see or signal host processes), and all capabilities dropped with `setpriv` so it
cannot undo the mounts. Killing the namespace's PID 1 kills every process in it, so double-forks and setsid() cannot
escape the deadline. Without namespaces, scoring stops (`require_isolation`) unless the config allows weaker
isolation.

A `WorkerPool` sets a sandbox up once per worker (see `Worker`); each job runs in a child forked inside it:
EvalPlus-style calls (`WorkerPool.run_calls`), a script per input (`run_stdio`) or a session whose functions the
caller calls (`CallSession`). Without a pool, `run_stdio` / `CallSession` start a private one-worker pool.

Secrets never enter the sandbox: expected outputs stay with the caller, which compares what the program printed
(stdio tests) or returned (call tests, through `CallSession`). A program that exits early, kills its parent, patches
the runner or reads every file it can see therefore cannot produce a pass it did not earn.

Protocol: JSON lines between the caller and the forkserver (_runner.py); see its job kinds.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "_runner.py"


@dataclass
class Limits:
    timeout_s: float = 10.0        # wall clock for the whole run (all tests)
    test_timeout_s: float = 6.0    # wall clock per stdio test
    cpu_s: int | None = None       # RLIMIT_CPU; default: ceil(timeout_s) + 1
    mem_mb: int = 2048             # RLIMIT_AS
    fsize_mb: int = 16             # RLIMIT_FSIZE (also bounds captured output)
    nproc: int = 64                # extra processes allowed above the user's current count (RLIMIT_NPROC)
    isolate: bool = True           # use namespaces when available


@dataclass
class RunResult:
    status: str                    # ok | error | timeout | sandbox_error
    returncode: int | None
    lines: list[dict] = field(default_factory=list)  # protocol records
    stderr: str = ""
    wall_s: float = 0.0
    isolation: str = "none"


NOBODY = 65534  # the uid/gid a root caller's sandboxes run as


_SETUP = (  # inside the new namespaces: keep only the work dir writable, then drop privileges and exec python
    # $S (the work dir, or for workers its scratch subdirectory) stays writable: its own mount, not remounted
    'mount --bind "$S" "$S" && cd "$W" || exit 1; '  # re-enter: the old cwd is on the soon read-only mount
    # the caller's credential files and directories (GRLO_HIDE, one per line) are covered by empty ones
    'printf "%s\\n" "$GRLO_HIDE" | while IFS= read -r p; do [ -z "$p" ] || '
    # (one this setup cannot even see is skipped: the program cannot see it either)
    '{ if [ -d "$p" ]; then mount -t tmpfs -o size=4k,mode=0 none "$p"; elif [ -e "$p" ]; then '
    'mount --bind /dev/null "$p"; fi; } || exit 1; done || exit 1; '
    "awk '{print $2}' /proc/self/mounts | while read mp; do "
    '[ "$mp" = "$S" ] || mount -o remount,bind,ro "$mp" 2>/dev/null; done; '
    "unset GRLO_HIDE W S; "
    # not exec'd: sh stays the namespace's init, so the program has a parent to kill (which ends the run) and,
    # unlike an init, it is not immune to its own signals
    'setpriv {drop} --bounding-set=-all --inh-caps=-all --no-new-privs "$@"'
)


def _hidden_paths(workdir: str) -> list[str]:
    """Where the caller's credentials live (hub token, cloud and SSH keys, netrc ...): covered inside namespaces, so a
    program cannot read them even where the read-only filesystem would let it. Paths that hold the interpreter or
    the work dir are left alone."""
    home = os.path.expanduser("~")
    env = os.environ
    cands = [env.get("HF_HOME"), env.get("HF_TOKEN_PATH"), env.get("HUGGINGFACE_HUB_CACHE"),
             os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "huggingface"),
             *(os.path.join(home, p) for p in (".ssh", ".aws", ".azure", ".config/gcloud", ".config/gh", ".docker",
                                               ".kube", ".gnupg", ".netrc", ".git-credentials", ".pypirc",
                                               ".config/openai"))]
    needed = [os.path.realpath(p) for p in (sys.executable, sys.prefix, sys.base_prefix, workdir, str(RUNNER))]
    out = []
    for c in cands:
        if not c or "\n" in c or not os.path.lexists(c):
            continue
        real = os.path.realpath(c)
        if any(n == real or n.startswith(real.rstrip("/") + "/") for n in needed) or real in out:
            continue
        out.append(real)
    return out


def _ns_command(as_root: bool) -> list[str]:
    if as_root:
        # Real root: PID/mount/net namespaces without a user namespace, and the program runs as nobody, so
        # RLIMIT_NPROC applies (the kernel exempts uid 0 from it, also inside a root-mapped user namespace).
        drop = f"--reuid={NOBODY} --regid={NOBODY} --clear-groups"
        return ["unshare", "-pfmni", "--mount-proc", "--kill-child", "sh", "-c", _SETUP.replace("{drop}", drop), "sh"]
    return ["unshare", "-Urnpfmi", "--mount-proc", "--kill-child", "sh", "-c", _SETUP.replace("{drop}", ""), "sh"]


@lru_cache(maxsize=1)
def isolation_mode() -> str:
    """'namespaces' (user namespaces; non-root caller), 'namespaces-nobody' (root caller), or 'process_group'."""
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return "process_group"
    as_root = os.geteuid() == 0
    d = tempfile.mkdtemp(prefix="grlo-sbx-probe-")
    try:
        if as_root:
            os.chown(d, NOBODY, NOBODY)
        # with the same credential paths to cover as real runs: if covering them fails, so does the probe
        r = subprocess.run([*_ns_command(as_root), "true"], capture_output=True, timeout=20, cwd=d,
                           env={"PATH": "/usr/bin:/bin", "W": d, "S": d, "GRLO_HIDE": "\n".join(_hidden_paths(d))})
        ok = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if not ok:
        return "process_group"
    return "namespaces-nobody" if as_root else "namespaces"


def namespaces_available() -> bool:
    return isolation_mode() != "process_group"


def _user_process_count(uid: int | None = None) -> int:
    uid = os.getuid() if uid is None else uid
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _preexec(limits: Limits, nproc_cap: int, setuid: int | None = None):
    cpu = limits.cpu_s or int(limits.timeout_s) + 2
    mem = limits.mem_mb * 1024 * 1024
    fsize = limits.fsize_mb * 1024 * 1024

    def fn():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc_cap, nproc_cap))
        if setuid is not None:  # root caller without namespaces: drop to nobody here
            os.setgroups([])
            os.setgid(setuid)
            os.setuid(setuid)

    return fn


def _env(workdir: str) -> dict:
    """The whole environment a sandboxed process gets: nothing of the caller's (no tokens, proxies or HOME)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "TMPDIR": workdir, "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _command(workdir: str, isolate: bool, *args: str) -> tuple[list[str], str]:
    py = [sys.executable, "-I", workdir + "/_runner.py", *args]
    iso = isolation_mode() if isolate else "process_group"
    if iso == "process_group":
        if os.geteuid() == 0 and shutil.which("setpriv"):
            # drop to nobody while exec'ing python (which may live where only root can look, e.g. under /root)
            return [*_SETPRIV_NOBODY, *py], iso
        return py, iso
    return [*_ns_command(iso == "namespaces-nobody"), *py], iso


_SETPRIV_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--bounding-set=-all",
                   "--inh-caps=-all", "--no-new-privs"]


class _Proc:
    """A sandboxed runner process with a protocol pipe, an output-bounded stderr file and a hard deadline."""

    def __init__(self, limits: Limits, writable: str):
        """`writable`: the only writable subdirectory of the work dir (with namespaces)."""
        self.limits = limits
        self.workdir = tempfile.mkdtemp(prefix="grlo-sbx-")
        os.chmod(self.workdir, 0o700)
        shutil.copy(RUNNER, os.path.join(self.workdir, "_runner.py"))
        rw = os.path.join(self.workdir, writable)
        os.makedirs(rw, mode=0o700, exist_ok=True)
        iso = isolation_mode() if limits.isolate else "process_group"
        cmd, self.isolation = _command(self.workdir, limits.isolate, "pidns" if iso != "process_group" else "nopidns")
        run_uid = None
        if os.geteuid() == 0:  # never run generated code as root: nobody owns the work dir and runs the program
            run_uid = NOBODY
            for root, dirs, files in os.walk(self.workdir):
                for name in [root, *(os.path.join(root, f) for f in files)]:
                    os.chown(name, NOBODY, NOBODY)
        self.errfile = tempfile.TemporaryFile()
        nproc_cap = _user_process_count(run_uid) + limits.nproc
        env = _env(self.workdir)
        env["W"], env["S"] = self.workdir, rw  # read (and unset) by the namespace setup script
        env["GRLO_HIDE"] = "\n".join(_hidden_paths(self.workdir))
        self.t0 = time.monotonic()
        self.deadline = self.t0 + limits.timeout_s
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errfile,
                                  cwd=self.workdir, env=env, close_fds=True,
                                  preexec_fn=_preexec(limits, nproc_cap, run_uid if (
                                      self.isolation == "process_group" and cmd[0] != "setpriv") else None))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.max_line = limits.fsize_mb * 1024 * 1024

    def send(self, obj: dict) -> bool:
        try:
            self.p.stdin.write((json.dumps(obj) + "\n").encode())
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def readline(self, deadline: float | None = None) -> dict | None:
        """Next protocol record, or None on EOF / deadline / garbage."""
        deadline = self.deadline if deadline is None else deadline
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.buf) > self.max_line:
                return None
            if not self.sel.select(timeout=left):
                return None
            chunk = os.read(self.p.stdout.fileno(), 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None
        return rec if isinstance(rec, dict) else None

    def close(self) -> tuple[int | None, str, float]:
        if getattr(self, "closed", None):
            return self.closed
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # the whole group; with namespaces also the PID ns init
        except ProcessLookupError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            pass
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.sel.close()
        self.errfile.seek(0)
        err = self.errfile.read(8192).decode("utf-8", "replace")
        self.errfile.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.closed = self.p.returncode, err, time.monotonic() - self.t0
        return self.closed


def _job_limits(limits: Limits, worker: "Worker") -> dict:
    return {"mem_bytes": limits.mem_mb << 20, "fsize_bytes": limits.fsize_mb << 20, "nproc": worker.nproc_cap,
            "cpu_s": limits.cpu_s or int(limits.timeout_s) + 2, "output_bytes": worker.limits.output_mb << 20}


def _pool_for(limits: Limits, pool: "WorkerPool | None") -> tuple["WorkerPool", bool]:
    """The given pool, or a private one-worker pool (closed by the caller) for a one-off run."""
    if pool is not None:
        return pool, False
    return WorkerPool(1, CallLimits(mem_mb=limits.mem_mb, fsize_mb=limits.fsize_mb, nproc=limits.nproc),
                      isolate=limits.isolate), True


def run_stdio(code: str, inputs: list[str], limits: Limits | None = None, pool: "WorkerPool | None" = None) -> RunResult:
    """Run `code` as a script once per input (a fresh process each, stdin = the input) in a sandbox worker; returns
    one record {"stdout", "returncode", "timeout"} per test that finished within limits.timeout_s."""
    limits = limits or Limits()
    pool, own = _pool_for(limits, pool)
    t0 = time.monotonic()
    lines, killed, isolation = [], "worker died", pool.isolation
    try:
        w = pool.acquire()
        broken = True
        try:
            job = {"kind": "stdio", "code": code, "inputs": list(inputs), "test_timeout_s": limits.test_timeout_s,
                   "deadline_s": limits.timeout_s, "limits": _job_limits(limits, w)}
            res = w.run_job(job, limits.timeout_s + 10)["sets"][0]
            lines, killed, broken = _parse_records(res.get("out", "")), res.get("killed"), bool(res.get("retire"))
        except WorkerDied:
            pass
        finally:
            pool.release(w, broken)
    finally:
        if own:
            pool.close()
    lines = lines[:len(inputs)]
    wall = time.monotonic() - t0
    status = "ok" if len(lines) == len(inputs) else ("timeout" if killed == "deadline" else "error")
    return RunResult(status, None, lines, "", wall, isolation)


class CallError(Exception):
    """The candidate raised, returned something unparsable, died or ran out of time."""


class CallSession:
    """Candidate code exec'd once inside a sandbox worker; `call(fn, *args)` runs fn there and returns its value.

    Used as a proxy: trusted test code (HumanEval's check()) runs in the caller, passing `session.proxy(name)` as
    the candidate, so the test's expected values never reach the sandbox. The whole session (load and calls) has
    limits.timeout_s; the worker is held by the session until close().
    """

    def __init__(self, code: str, limits: Limits | None = None, pool: "WorkerPool | None" = None):
        self.limits = limits or Limits()
        self.pool, self.own_pool = _pool_for(self.limits, pool)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.limits.timeout_s + 2  # the worker enforces timeout_s; this is a backstop
        self.worker = self.pool.acquire()
        self.isolation = self.worker.isolation
        self.broken = False
        hello = None
        if self.worker.proc.send({"kind": "session", "code": code, "deadline_s": self.limits.timeout_s,
                                  "limits": _job_limits(self.limits, self.worker)}):
            hello = self.worker.proc.readline(self.deadline)
        self.broken = hello is None
        self.ready = bool(hello and hello.get("ready"))
        self.load_error = None if self.ready else ((hello or {}).get("error") or "candidate did not start")
        self.dead = not self.ready

    def call(self, fn: str, *args, **kwargs):
        if self.dead:
            raise CallError(self.load_error or "sandbox is gone")
        rec = None
        if self.worker.proc.send({"fn": fn, "args": repr(args), "kwargs": repr(kwargs)}):
            rec = self.worker.proc.readline(self.deadline)
        if rec is None or rec.get("dead"):
            self.dead = True
            self.broken = self.broken or rec is None
            raise CallError("no answer (exited, killed or timed out)")
        if not rec.get("ok"):
            raise CallError(str(rec.get("error", "error")))
        try:
            return ast.literal_eval(rec["result"])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, KeyError):
            raise CallError("result is not a Python literal") from None

    def proxy(self, fn: str):
        return lambda *a, **k: self.call(fn, *a, **k)

    def close(self) -> RunResult:
        if self.worker is not None:
            end = None
            if not self.broken and self.worker.proc.send({"end": True}):
                end = self.worker.proc.readline(time.monotonic() + 10)
            self.pool.release(self.worker, end is None or not end.get("ended") or bool(end.get("retire")))
            self.worker = None
            if self.own_pool:
                self.pool.close()
        self.dead = True
        return RunResult("ok" if self.ready else "error", None, [], "", time.monotonic() - self.t0, self.isolation)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- long-lived sandboxed workers (forkserver)

class WorkerDied(Exception):
    """The worker's sandbox exited, stopped answering or answered garbage; it is discarded."""


@dataclass
class CallLimits:
    """Limits of one forked job (EvalPlus-style calls): each test set gets its own child and its own deadline."""
    mem_mb: int = 4096
    fsize_mb: int = 16             # RLIMIT_FSIZE: files the program writes
    output_mb: int = 256           # the returned values of one test set (EvalPlus has no such cap: keep it roomy)
    nproc: int = 64


class Worker:
    """One sandbox set up once (namespaces, read-only filesystem but its scratch directory, no network, scrubbed
    environment, no capabilities) running the forkserver of _runner.py. Each job (each test set of a calls job) runs
    in a fresh child forked from it: own session and process group, the scratch directory emptied, fresh rlimits
    (address space, CPU, file size, processes, no core) and a deadline; after each child everything it left in the
    PID namespace is killed. Only the inputs enter; returned values come back as plain data (see _runner.encode)."""

    def __init__(self, limits: CallLimits, isolate: bool = True):
        self.limits = limits
        # the forkserver's own limits bound its children's: generous CPU (it lives long), the jobs' memory
        big = Limits(timeout_s=1e9, cpu_s=10**7, mem_mb=limits.mem_mb + 256, fsize_mb=limits.fsize_mb,
                     nproc=limits.nproc, isolate=isolate)
        self.proc = _Proc(big, writable="scratch")
        self.isolation = self.proc.isolation
        self.retire = False
        self.proc.max_line = (2 * limits.output_mb + 16) << 20  # a reply holds the sets' escaped outputs
        self.nproc_cap = _user_process_count(NOBODY if os.geteuid() == 0 else None) + limits.nproc
        hello = self.proc.readline(time.monotonic() + 30)
        if not (hello and hello.get("ready")):
            from grlo.errors import GrloError

            _, err, _ = self.proc.close()
            last = (err.strip().splitlines() or ["no output"])[-1][:300]
            raise GrloError(f"the sandbox worker did not start ({self.isolation}): {last}", field="sandbox")

    def run_job(self, job: dict, timeout_s: float) -> dict:
        """Send one job, return the forkserver's reply line; WorkerDied when none comes within timeout_s."""
        if not self.proc.send(job):
            raise WorkerDied("sandbox worker closed its input")
        reply = self.proc.readline(time.monotonic() + timeout_s)
        if reply is None or not isinstance(reply.get("sets"), list) or not reply["sets"]:
            raise WorkerDied("sandbox worker gave no answer")
        return reply

    def run_calls(self, code: str, entry_point: str, sets: list[dict]) -> list[dict]:
        """`sets`: [{"inputs": [args per call] (or "inputs_pickle": pickle_inputs(them)), "time_limits": [s per call],
        "deadline_s": s}]. Returns per set {"records": [...], "killed": None | "deadline" | "output too large",
        "wall_s"}: records are {"i", "out": value} / {"i", "error"} per finished call, {"done": True} last, or
        {"load_error"}."""
        deadline = max(1.0, max(t["deadline_s"] for t in sets))
        lim = self.limits
        job = {"kind": "calls", "code": code, "entry_point": entry_point,
               "limits": {"mem_bytes": lim.mem_mb << 20, "stack_bytes": lim.mem_mb << 20,  # as EvalPlus
                          "fsize_bytes": lim.fsize_mb << 20, "nproc": self.nproc_cap, "cpu_s": int(deadline) + 2,
                          "output_bytes": lim.output_mb << 20},
               "sets": [{"inputs_pickle": t.get("inputs_pickle") or pickle_inputs(t["inputs"]),
                         "time_limits": list(t["time_limits"]), "deadline_s": t["deadline_s"]} for t in sets]}
        # each set's child is killed at its deadline by the forkserver; the margin covers its clean-up
        reply = self.run_job(job, sum(t["deadline_s"] for t in sets) + 10)
        if len(reply["sets"]) != len(sets):
            raise WorkerDied("sandbox worker gave no answer")
        self.retire = any(r.get("retire") for r in reply["sets"])  # its scratch dir could not be emptied
        return [{"records": _parse_records(r.get("out", "")), "killed": r.get("killed"), "wall_s": r.get("wall_s")}
                for r in reply["sets"]]

    def close(self) -> None:
        self.proc.close()


def pickle_inputs(inputs) -> str:
    """Inputs travel into the sandbox pickled (caller to sandbox only: never unpickle what comes back)."""
    import base64
    import pickle

    return base64.b64encode(pickle.dumps([list(i) for i in inputs], protocol=pickle.HIGHEST_PROTOCOL)).decode()


def _parse_records(text: str) -> list[dict]:
    """The child's JSON lines; a line that does not parse (the program may write to the pipe too) ends them."""
    from grlo.eval import _runner

    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                break
            if "out" in rec:
                rec["out"] = _runner.decode(rec["out"], _foreign_type)
        except (ValueError, TypeError, KeyError, RecursionError, MemoryError, AttributeError):
            break
        out.append(rec)
    return out


@lru_cache(maxsize=None)
def _foreign_type(name: str, base: type) -> type:
    """A plain subclass of `base` named after the program's type (numpy.float64, a namedtuple ...): equal to what its
    built-in value is equal to, and of a different type() than the built-in, as the original object was."""
    module, _, qual = str(name).rpartition(".")
    return type(qual or "value", (base,), {"__module__": "sandboxed." + module})


class WorkerPool:
    """Up to `size` workers shared by threads; each started on first use and replaced when it dies."""

    def __init__(self, size: int, limits: CallLimits | None = None, isolate: bool = True):
        import queue

        self.limits = limits or CallLimits()
        self.isolate = isolate
        self.idle: "queue.Queue[Worker | None]" = queue.Queue()
        for _ in range(size):
            self.idle.put(None)
        self.started: list[Worker] = []
        self.inputs_cache: dict = {}  # key -> pickle_inputs(...), for inputs shared by many programs

    def acquire(self) -> Worker:
        """A worker for this thread alone (started on first use); give it back with release()."""
        w = self.idle.get()
        if w is None:
            try:
                w = Worker(self.limits, self.isolate)
            except BaseException:
                self.idle.put(None)
                raise
            self.started.append(w)
        return w

    def release(self, w: Worker, broken: bool = False) -> None:
        """Back to the pool; a broken worker (died, stuck, or its scratch dir could not be emptied) is replaced."""
        if broken or w.retire:
            w.close()
            if w in self.started:
                self.started.remove(w)
            w = None
        self.idle.put(w)

    def run_calls(self, code: str, entry_point: str, sets: list[dict]) -> list[dict] | None:
        """As Worker.run_calls; None when the worker died during the job (it is replaced)."""
        w = self.acquire()
        broken = True
        try:
            out = w.run_calls(code, entry_point, sets)
            broken = False
            return out
        except WorkerDied:
            return None
        finally:
            self.release(w, broken)

    @property
    def isolation(self) -> str:
        return isolation_mode() if self.isolate else "process_group"

    def close(self) -> None:
        for w in self.started:
            w.close()
        self.started = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- isolation policy

ENABLE_HINT = ("the code sandbox needs PID/mount/network namespaces (util-linux unshare + setpriv; unprivileged user "
               "namespaces for a non-root user) and cannot get them here: enable them (sysctl "
               "kernel.unprivileged_userns_clone=1 and user.max_user_namespaces>0; in Docker run with "
               "--security-opt seccomp=unconfined or use Apptainer) or set sandbox.allow_weaker: true in the config "
               "to run generated code with process-group isolation only (recorded with every score)")


def require_isolation(allow_weaker: bool) -> str:
    """The isolation scoring will have; stops with one line when it is weaker than namespaces and not allowed."""
    from grlo.errors import GrloError

    mode = isolation_mode()
    if mode == "process_group" and not allow_weaker:
        raise GrloError(ENABLE_HINT, field="sandbox")
    return mode
