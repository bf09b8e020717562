"""Runs INSIDE the sandbox (bound read-only at /opt/grlo/_runner.py): the forkserver of one sandbox worker
(sandbox.Worker).
Standard library only (numpy is preloaded if present).

It holds no secrets: inputs in, outputs out; the caller decides pass/fail. Job kinds, each in a child forked per
job (or per test set): calls (EvalPlus-style calls of an entry point), stdio (a script per input), session (the
program loaded once, then called on request). The caller imports `encode` / `decode` from here too, so both sides
share one value format.
"""

import ast
import base64
import builtins
import ctypes
import faulthandler
import importlib
import json
import os
import pickle
import platform
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback


def _proto():
    # The protocol uses a private dup of stdout; the candidate's prints go to stderr so they cannot corrupt it.
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


def _run_forked(code, inp, timeout):
    """Run compiled `code` as __main__ in a forked child with `inp` on stdin; (stdout, returncode, timed_out).

    Forking the already-started interpreter avoids a fresh python per test (and needs no exec permission)."""
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


def stdio(proto, job):
    """job {"code", "inputs": [str], "test_timeout_s"}: the program runs once per input in a forked grandchild with
    the input on stdin; one record {"stdout", "returncode", "timeout"} per test on `proto`."""
    src = job["code"]
    try:
        code = compile(src, "main.py", "exec")
    except (SyntaxError, ValueError) as e:
        for _ in job["inputs"]:
            proto.write(json.dumps({"stdout": "", "returncode": 1, "timeout": False, "error": str(e)[:200]}) + "\n")
        return
    for inp in job["inputs"]:
        out, rc, timed_out = _run_forked(code, inp, job["test_timeout_s"])
        proto.write(json.dumps({"stdout": out, "returncode": rc, "timeout": timed_out}) + "\n")


def serve(proto, src):
    """`src` is exec'd once; then each request line {"fn", "args": repr, "kwargs": repr} on stdin is answered on
    `proto` with {"ok": true, "result": encode(value)} or {"ok": false, "error": "TypeName: msg"}; the caller
    decodes the plain data (never unpickles, never evaluates)."""
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
            out = {"ok": True, "result": encode(fn(*args, **kwargs))}
        except Unencodable as e:
            out = {"ok": False, "error": f"unencodable {e}"}
        except BaseException as e:  # noqa: BLE001
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"[:500]}
        proto.write(json.dumps(out) + "\n")


# ---------------------------------------------------------------- values across the sandbox boundary
# Tagged JSON for plain Python data. Only exact built-in types are encoded as themselves; an instance of a subclass
# of a built-in (numpy scalars, namedtuples, Counter ...) travels as {"sub": type name, "v": its built-in value}, so
# the caller compares built-in values with the built-in __eq__: an object whose __eq__ always answers True cannot
# cross. Anything else is refused.

class Unencodable(Exception):
    pass


_BASES = (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)


_NATIVE = {int, str, bool, type(None)}  # travel as plain JSON


def encode(x, depth=0):
    if depth > 200:
        raise Unencodable("nested too deeply")
    t = type(x)
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return {"f": repr(x)}  # repr round-trips exactly, including inf, -inf, nan, -0.0
    if t is list:
        if all(type(v) in _NATIVE for v in x):  # fast path: a list of JSON-native values is itself
            return list(x)
        return [encode(v, depth + 1) for v in x]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, depth + 1) for v in x]}
    if t is complex:
        return {"c": [repr(x.real), repr(x.imag)]}
    if t is bytes:
        return {"b": x.hex()}
    for base in _BASES:
        if isinstance(x, base):  # a subclass: its built-in value, never its methods
            if base is float:
                plain = float.__float__(x)
            elif base is int:
                plain = int.__index__(x)
            elif base is complex:
                plain = complex.__complex__(x)
            elif base is str:
                plain = str.__str__(x)
            elif base is bytes:
                plain = bytes(memoryview(x))
            elif base is dict:
                plain = dict(dict.items(x))
            else:
                plain = base(base.__iter__(x))
            return {"sub": f"{t.__module__}.{t.__qualname__}"[:200], "v": encode(plain, depth + 1)}
    raise Unencodable(f"{t.__module__}.{t.__qualname__}"[:200])


def decode(x, subclass=None):
    """Inverse of encode. `subclass(name, base)` returns the class to rebuild a subclass instance with (the caller
    passes plain, trusted subclasses that only carry the name); default: the built-in value itself."""
    if isinstance(x, list):
        if not any(isinstance(v, (list, dict)) for v in x):  # fast path: nothing tagged inside
            return x
        return [decode(v, subclass) for v in x]
    if not isinstance(x, dict):
        return x
    if "sub" in x:
        plain = decode(x["v"], subclass)
        return subclass(x["sub"], type(plain))(plain) if subclass and type(plain) is not bool else plain
    (tag, v), = x.items()
    if tag == "f":
        return float(v)
    if tag == "t":
        return tuple(decode(e, subclass) for e in v)
    if tag == "d":
        return {decode(k, subclass): decode(e, subclass) for k, e in v}
    if tag == "s":
        return {decode(e, subclass) for e in v}
    if tag == "fs":
        return frozenset(decode(e, subclass) for e in v)
    if tag == "c":
        return complex(float(v[0]), float(v[1]))
    if tag == "b":
        return bytes.fromhex(v)
    raise ValueError(f"unknown tag {tag!r}")


# ---------------------------------------------------------------- forkserver (one long-lived sandbox per worker)

class _WriteOnly:
    """EvalPlus's swallow_io: the program's prints vanish and reading stdin raises."""

    def write(self, s):
        return len(s)

    def writelines(self, lines):
        pass

    def flush(self):
        pass

    def read(self, *a, **k):
        raise IOError

    readline = readlines = read

    def readable(self):
        return False

    def isatty(self):
        return False


class _Timeout(Exception):
    pass


def _guard():
    """What EvalPlus's reliability_guard disables (evalplus/eval/utils.py), so the same programs fail the same way:
    the sandbox, not this, is the security boundary."""
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod",
                 "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    builtins.open = None
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for mod in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[mod] = None


def own_namespaces():
    """Move this process into its own user and System V IPC namespaces (same uid and gid), then drop every
    capability the new user namespace gave it: the job's message queues, semaphores and shared memory vanish with
    it, and RLIMIT_NPROC counts only its own tasks (the kernel counts per user namespace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE=1 (the forkserver's 0 makes /proc/self/*_map root's)
    if libc.unshare(0x10000000 | 0x08000000) != 0:  # CLONE_NEWUSER | CLONE_NEWIPC
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER|CLONE_NEWIPC) failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (an unknown cap number just fails)
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:  # effective, permitted, inheritable: none
        raise OSError(ctypes.get_errno(), "capset failed")


def _enter_child(lim, scratch, wfd, stdin_fd=None):
    """First thing in a forked job: own session (and with namespaces own user + IPC namespaces), the scratch dir as
    cwd and TMPDIR, stdin from `stdin_fd` or /dev/null, stdout/stderr to /dev/null, the result pipe on fd 3 and no
    other descriptor, fresh rlimits."""
    os.setsid()
    if lim.get("own_ns"):
        own_namespaces()
    os.chdir(scratch)
    os.environ["TMPDIR"] = scratch
    os.environ.pop("HOME", None)
    null = os.open("/dev/null", os.O_RDWR)
    if stdin_fd is not None:
        os.dup2(stdin_fd, 0)
    for fd in (1, 2) if stdin_fd is not None else (0, 1, 2):
        os.dup2(null, fd)
    os.dup2(wfd, 3)
    os.closerange(4, 1 << 16)
    mem = lim["mem_bytes"]
    for res, v in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem), (resource.RLIMIT_STACK, lim.get("stack_bytes")),
                   (resource.RLIMIT_CPU, lim["cpu_s"]), (resource.RLIMIT_FSIZE, lim["fsize_bytes"]),
                   (resource.RLIMIT_NPROC, lim["nproc"]), (resource.RLIMIT_NOFILE, lim.get("nofile")),
                   (resource.RLIMIT_CORE, 0)):
        if v is None:
            continue
        hard = resource.getrlimit(res)[1]
        v = v if hard == resource.RLIM_INFINITY else min(v, hard)
        resource.setrlimit(res, (v, v))
    return 3


def _child_stdio(job, scratch, wfd):
    """A stdio job in the forked child: the program runs once per input in a grandchild (see stdio())."""
    try:
        wfd = _enter_child(job["limits"], scratch, wfd)
        stdio(os.fdopen(wfd, "w", buffering=1), job)
    except BaseException:  # noqa: BLE001 - nothing may escape into the forkserver's code
        pass
    os._exit(0)


def _child(job, tset, scratch, wfd):
    """In the forked child: fresh session, scratch dir and rlimits; exec the program and call it on each input."""
    write, exit_ = os.write, os._exit
    try:
        wfd = _enter_child(job["limits"], scratch, wfd)

        def emit(rec):
            data = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
            while data:
                data = data[write(wfd, data):]

        def on_alarm(signum, frame):
            raise _Timeout("Timed out!")

        # inputs come from the caller (trusted direction): pickled there, as EvalPlus hands them to its process
        inputs = pickle.loads(base64.b64decode(tset["inputs_pickle"]))
        limits_s = tset["time_limits"]
        code = job["code"]
        entry = job["entry_point"]
        _guard()
        sink = _WriteOnly()
        real = sys.stdout, sys.stderr, sys.stdin
        g = {}
        try:
            sys.stdout = sys.stderr = sys.stdin = sink
            exec(code, g)
            fn = g[entry]
        except BaseException as e:  # noqa: BLE001 - any failure to load (SyntaxError, SystemExit, missing name)
            sys.stdout, sys.stderr, sys.stdin = real
            emit({"load_error": type(e).__name__})
            exit_(0)
        sys.stdout, sys.stderr, sys.stdin = real
        for i, inp in enumerate(inputs):
            try:
                signal.signal(signal.SIGALRM, on_alarm)
                signal.setitimer(signal.ITIMER_REAL, limits_s[i])
                try:
                    sys.stdout = sys.stderr = sys.stdin = sink
                    out = fn(*inp)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    sys.stdout, sys.stderr, sys.stdin = real
                rec = {"i": i, "out": encode(out)}
            except Unencodable as e:
                rec = {"i": i, "error": "unencodable " + str(e)}
            except BaseException as e:  # noqa: BLE001 - the call failed (incl. timeout, SystemExit)
                rec = {"i": i, "error": type(e).__name__}
            emit(rec)
        emit({"done": True})
    except BaseException:  # noqa: BLE001 - nothing may escape into the forkserver's code
        pass
    exit_(0)


def _end_job(pid, own_pidns):
    """Kill a job's process group, wait for its leader and reap whatever else it left in the sandbox."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    _reap_all(own_pidns)


def _reap_all(own_pidns):
    """After a job: kill what the program left behind (everything in this PID namespace but us and its init; without
    a PID namespace only the job's process group was killed) and reap it. The kill is repeated while children are
    left: a process forked while the first kill went out escapes it. Gives up after 5 s (the caller then finds a
    process left and retires the worker)."""
    give_up = time.monotonic() + 5
    while True:
        if own_pidns:
            try:
                os.kill(-1, signal.SIGKILL)  # Linux: never the caller itself nor init
            except (ProcessLookupError, PermissionError):
                pass
        while True:  # reap every child that is gone by now
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        if not own_pidns or time.monotonic() > give_up:
            return
        time.sleep(0.002)


def _others_alive(own_pidns):
    """True when a process other than us and the namespace's init is still there (with our own PID namespace)."""
    if not own_pidns:
        return False
    me = os.getpid()
    return any(p.isdigit() and int(p) not in (1, me) for p in os.listdir("/proc"))


def _run_child(target, scratch, deadline_s, max_bytes, own_pidns):
    """Fork a job child running target(scratch, result_pipe_fd); collect what it writes on the pipe until it exits,
    the pipe closes, the deadline passes or it writes too much; then kill and reap everything it left."""
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        target(scratch, w)
        os._exit(0)
    os.close(w)
    # The job ends when the child exits (its pidfd turns readable) or when the pipe closes, whichever comes first:
    # a grandchild holding the pipe open cannot keep it going.
    pidfd = os.pidfd_open(pid)
    os.set_blocking(r, False)
    deadline = t0 + deadline_s
    chunks, size, why, exited = [], 0, None, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            why = "deadline"
            break
        ready, _, _ = select.select([r, pidfd], [], [], left)
        if not ready:
            why = "deadline"
            break
        exited = exited or pidfd in ready
        try:
            data = os.read(r, 1 << 16)
        except BlockingIOError:
            data = None
        if data:
            size += len(data)
            if size > max_bytes:
                why = "output too large"
                break
            chunks.append(data)
        elif data == b"" or exited:
            break
    os.close(pidfd)
    os.close(r)
    _end_job(pid, own_pidns)
    return {"out": b"".join(chunks).decode("utf-8", "replace"), "killed": why, "wall_s": time.monotonic() - t0}


# The standard-library modules an EvalPlus evaluation process has loaded (evalplus 0.3.1, `import evalplus.evaluate`),
# plus numpy: imported once by the forkserver, so a program's own imports of them work after the guard as they do
# under EvalPlus (a module imported for the first time under the guard may fail there as here).
PRELOAD = ("abc argparse array ast asyncio atexit base64 binascii bisect bz2 calendar cmath codecs collections "
           "colorsys concurrent.futures configparser contextlib contextvars copy copyreg csv ctypes dataclasses "
           "datetime decimal difflib dis email enum errno faulthandler fcntl fnmatch fractions functools gc glob grp "
           "gzip hashlib heapq hmac html http importlib inspect io ipaddress itertools json keyword linecache locale "
           "logging lzma math mimetypes mmap multiprocessing numbers opcode operator pathlib pickle pkgutil platform "
           "pprint pwd pydoc queue quopri random re reprlib resource runpy secrets select selectors shlex shutil "
           "signal socket ssl stat string struct subprocess sysconfig tarfile tempfile termios textwrap threading time "
           "token tokenize traceback tty types typing unicodedata unittest urllib uuid warnings weakref xml zipfile "
           "zlib zoneinfo numpy").split()


def _session(job, scratch, own_pidns, proto):
    """An interactive job: the program is exec'd once in a forked child (serve()); each request line the caller
    sends is passed to it and its answer back, within the job's deadline, until the caller sends {"end": true}.
    Returns the closing record."""
    r_req, w_req = os.pipe()
    r_resp, w_resp = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w_req)
            os.close(r_resp)
            wfd = _enter_child(job["limits"], scratch, w_resp, stdin_fd=r_req)
            sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
            serve(os.fdopen(wfd, "w", buffering=1), job["code"])
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    os.close(r_req)
    os.close(w_resp)
    pidfd = os.pidfd_open(pid)
    os.set_blocking(r_resp, False)
    deadline = time.monotonic() + job["deadline_s"]
    buf, limit = b"", job["limits"]["output_bytes"]

    def answer():
        nonlocal buf
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(buf) > limit:
                return None
            ready, _, _ = select.select([r_resp, pidfd], [], [], left)
            if not ready:
                return None
            try:
                data = os.read(r_resp, 1 << 16)
            except BlockingIOError:  # nothing to read: the child has exited (a grandchild may hold the pipe)
                return None
            if not data:
                return None
            buf += data
        line, buf = buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    hello = answer()
    proto.write((hello if hello is not None else json.dumps({"ready": False, "error": "candidate did not start"}))
                + "\n")
    alive = hello is not None
    for line in sys.stdin:
        if json.loads(line).get("end"):
            break
        reply = None
        if alive:
            try:
                os.write(w_req, line.encode())
                reply = answer()
            except OSError:
                reply = None
        alive = reply is not None
        proto.write((reply if alive else json.dumps({"ok": False, "dead": True})) + "\n")
    for fd in (r_resp, w_req, pidfd):
        os.close(fd)
    _end_job(pid, own_pidns)
    return {"ended": True}


def clear_dir(d, budget=5_000_000):
    """Empty directory d whatever a job left in it: any depth (no recursion, relative names only, so no path gets
    long), symlinks (removed, never followed), loops, modes, fifos, sockets. True when d is then empty; False (never
    an exception) when something could not be removed or the budget of steps ran out."""
    try:  # come back to the caller's working directory, whatever happens (the scorer calls this in its own process)
        home = os.open(".", os.O_RDONLY)
    except OSError:
        home = None
    try:
        try:
            os.chmod(d, 0o700)
        except OSError:  # not ours (a root-made tmpfs top): it only needs to be writable
            pass
        if not stat.S_ISDIR(os.lstat(d).st_mode):
            return False
        os.chdir(d)
        below = []  # names of the directories entered below d
        while budget > 0:
            budget -= 1
            sub, removed = None, False
            with os.scandir(".") as it:
                for e in it:
                    budget -= 1
                    if e.is_dir(follow_symlinks=False):
                        sub = e.name
                        break
                    os.unlink(e.name)
                    removed = True
            if sub is not None:
                os.chmod(sub, 0o700)  # a real directory, owned by the job's uid
                os.chdir(sub)
                below.append(sub)
            elif removed:
                continue  # look again: entries may have been skipped while removing
            elif below:
                os.chdir("..")
                os.rmdir(below.pop())
            else:
                return True
        return False
    except (OSError, ValueError):
        return False
    finally:
        try:
            if home is None:
                os.chdir("/")
            else:
                os.fchdir(home)
                os.close(home)
        except OSError:
            pass


def _reset_box(box, dirs):
    """Empty the job's writable tree and re-make its directories; True when that worked."""
    if not clear_dir(box):
        return False
    try:
        for d in dirs:
            if d != box:
                os.mkdir(d, 0o700)
        return True
    except OSError:
        return False


def _own_state():
    """What a job could change in the forkserver (same uid): its rlimits, priority, CPU affinity, I/O priority."""
    rl = tuple(resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource)) if n.startswith("RLIMIT_"))
    nr = {"x86_64": 252, "aarch64": 31}.get(platform.machine())  # ioprio_get
    io = ctypes.CDLL(None).syscall(nr, 1, 0) if nr else None  # IOPRIO_WHO_PROCESS, self
    return rl, os.getpriority(os.PRIO_PROCESS, 0), tuple(sorted(os.sched_getaffinity(0))), io


def forkserver(proto, own_pidns, box, dirs):
    """Jobs in on stdin, one JSON line each: {"code", "entry_point", "limits", "sets": [{"inputs_pickle" (base64),
    "time_limits", "deadline_s"}]}; for each set a fresh child (own session and namespaces, fresh rlimits) execs the
    code and calls the entry point on every input; the reply line holds each set's records: {"i", "out"} or
    {"i", "error"} per input, then {"done": true}; {"load_error"} when the code did not load. `box`: the tree a job
    may write (emptied after each job), `dirs`: the directories re-made in it, the first the job's cwd and TMPDIR."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional module (numpy) may be missing
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of a job come back to us to be reaped
    libc.prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE=0: a job cannot ptrace us or write our memory
    scratch = dirs[0]  # the job's cwd and TMPDIR; with namespaces box (its tmpfs) is the only writable place
    if not _reset_box(box, dirs):
        raise SystemExit(f"cannot prepare {box}")
    state = _own_state()

    def clean():
        """After a job: True when the worker must be retired (its tree could not be emptied, a process of the job
        survived, or it was tampered with: a job runs as our uid and could have lowered our limits, reniced or
        re-pinned us)."""
        return not _reset_box(box, dirs) or _own_state() != state or _others_alive(own_pidns)

    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        results = []
        kind = job.get("kind", "calls")
        if kind == "session":
            rec = _session(job, scratch, own_pidns, proto)
            rec["retire"] = clean()
            proto.write(json.dumps(rec) + "\n")
            continue
        if kind == "stdio":
            targets = [(lambda d, w: _child_stdio(job, d, w), job["deadline_s"])]
        else:
            targets = [((lambda t: lambda d, w: _child(job, t, d, w))(t), t["deadline_s"]) for t in job["sets"]]
        for target, deadline_s in targets:
            results.append(_run_child(target, scratch, deadline_s, job["limits"]["output_bytes"], own_pidns))
            if clean():
                results[-1]["retire"] = True  # the caller replaces this worker
        proto.write(json.dumps({"sets": results}) + "\n")


if __name__ == "__main__":
    if os.path.isdir("/opt/grlo/site"):  # the packages programs may import, inside the sandbox (sandbox.BOX_SITE)
        sys.path.append("/opt/grlo/site")
    forkserver(_proto(), sys.argv[1] == "pidns", sys.argv[2], sys.argv[3:])
