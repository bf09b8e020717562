"""grlo's own output lock (grlo/outdir_lock.py): a second trainer or scorer on the same output is refused with one
line; a lock left by a killed holder (kill -9) is taken over with one line; Snakemake's --unlock does not touch it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grlo import outdir_lock as L
from grlo.errors import GrloError

ROOT = Path(__file__).resolve().parent.parent
PAPER, SMOKE = str(ROOT / "config/config.yaml"), str(ROOT / "config/smoke.yaml")
ENV = {**{k: v for k, v in os.environ.items() if k != L.ENV}, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _grlo(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "grlo.cli", *argv], env=ENV, capture_output=True, text=True,
                          timeout=600, **kw)


def _score_argv(tmp_path: Path, out: Path) -> list[str]:
    data = tmp_path / "math500.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "What is 1+1?", "answer": "2"}) + "\n")
    gens = tmp_path / "g.jsonl"
    gens.write_text(json.dumps({"id": "a", "completions": ["\\boxed{2}"]}) + "\n")
    return ["score", "--config", PAPER, SMOKE, "--benchmark", "math500", "--data", str(data), "--generations",
            str(gens), "--output", str(out)]


def test_second_scorer_on_the_same_output_is_refused(tmp_path):
    """The first scorer holds the lock (here: this process, as `grlo score` would); a second `grlo score` on the same
    output exits 2 with one line naming the holder and writes nothing; once released, the same command scores."""
    out = tmp_path / "scores" / "math500.json"
    argv = _score_argv(tmp_path, out)
    with L.hold(out, is_dir=False, command="score") as lock:
        assert lock.exists() and json.loads(lock.read_text())["pid"] == os.getpid()
        r = _grlo(*argv)
        err = r.stderr.strip()
        assert r.returncode == 2 and err.count("\n") == 0 and "Traceback" not in err, r.stderr[-2000:]
        assert f"output file is in use by pid {os.getpid()} on host {socket.gethostname()}" in err, err
        assert str(out) in err and "--unlock does not remove it" in err
        assert not out.exists()
    assert not lock.exists() and not (tmp_path / "scores").exists()  # released: no lock file, no created directory
    r = _grlo(*argv)
    assert r.returncode == 0 and out.exists(), r.stderr[-2000:]
    assert not list(out.parent.glob(".*grlo-lock"))


def test_lock_left_by_a_dead_process_is_taken_over_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom grlo import outdir_lock as L\n"
                              f"with L.hold({str(out)!r}, True, 'train-grlo'):\n print('held', flush=True)\n"
                              " time.sleep(600)"], env=ENV, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(GrloError, match=f"in use by pid {child.pid} on host"):
        with L.hold(out, True, "train-grlo"):
            pass
    child.send_signal(signal.SIGKILL)  # kill -9: no clean-up; the kernel drops the flock, the file stays
    child.wait()
    assert json.loads((out / ".grlo-lock").read_text())["pid"] == child.pid
    with L.hold(out, True, "train-grlo"):
        assert json.loads((out / ".grlo-lock").read_text())["pid"] == os.getpid()
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and f"taking over the lock of pid {child.pid}" in said[0] and "no longer running" in said[0]


def _left(out: Path, **info) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    p = out / ".grlo-lock"
    p.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "proc_start": None,
                             "started": "2026-01-01T00:00:00", "command": "grlo train-grlo", **info}))
    return p


def test_reused_pid_and_old_heartbeat_of_another_host_are_stale(tmp_path, capsys):
    # same host, a live pid whose process started at another time: the pid was reused, the holder is gone
    _left(tmp_path / "a", proc_start="another-boot:1")
    with L.hold(tmp_path / "a", True):
        pass
    # another host: refused while its heartbeat is fresh (a job may still run there), taken over once it is old
    p = _left(tmp_path / "b", host="node-that-is-not-here", pid=12345)
    with pytest.raises(GrloError, match=r"in use by pid 12345 on host node-that-is-not-here .*heartbeat \d+ s ago.*"
                                        r"delete .*\.grlo-lock"):
        with L.hold(tmp_path / "b", True):
            pass
    old = time.time() - L.STALE_S - 60
    os.utime(p, (old, old))
    with L.hold(tmp_path / "b", True):
        pass
    said = capsys.readouterr().out
    assert said.count("taking over the lock") == 2 and "node-that-is-not-here" in said


def test_processes_started_by_the_holder_pass(tmp_path):
    """torchrun / accelerate workers re-enter `grlo.cli` for the same output: they inherit the lock."""
    code = (f"from grlo import outdir_lock as L\nwith L.hold({str(tmp_path)!r}, True) as p:\n print(p)")
    with L.hold(tmp_path, True):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, L.ENV: os.environ[L.ENV]})
        assert r.returncode == 0 and r.stdout.strip() == "None", r.stderr[-2000:]
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
        assert r.returncode == 1 and "in use by pid" in r.stderr


def test_snakemake_unlock_leaves_the_lock(tmp_path):
    """`snakemake --unlock` (Snakemake's advice after a crash) removes .snakemake/locks only: the trainer's lock in
    the output directory still refuses a second writer."""
    out = tmp_path / "outdir" / "checkpoints" / "b" / "grlo"
    snakemake = str(Path(sys.executable).parent / "snakemake")
    with L.hold(out, True, "train-grlo") as lock:
        r = subprocess.run([snakemake, "--unlock", "--configfile", SMOKE, "--config", f"outdir={tmp_path / 'outdir'}"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert lock.exists()
        r = _grlo("train-grlo", "--config", PAPER, SMOKE, "--backbone", "qwen3-4b-base", "--engine", "native",
                  "--output-dir", str(out))
        assert r.returncode == 2 and "output directory is in use by pid" in r.stderr, r.stderr[-2000:]


def test_two_trainers_then_kill_9_and_restart(tmp_path):
    """Two real `grlo train-grlo` on one output directory: the second is refused with one line while the first
    trains; the first is killed with SIGKILL after a checkpoint; a restart takes the lock over (one line) and
    resumes from that checkpoint to final/."""
    from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model

    from test_ppo_trainer import write_prompts

    pol, rm = build_tiny_policy(tmp_path / "policy", seed=0), build_tiny_reward_model(tmp_path / "rm", seed=0)
    over = tmp_path / "over.yaml"
    over.write_text("grlo:\n  train_batch_size: 8\n  max_response_length: 8\n  total_training_steps: 6\n  save_freq: 1\n"
                    "  actor: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2}\n"
                    "  critic: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 4}\n  rollout: {batch_size: 8}\n")
    out = tmp_path / "run"
    argv = ["train-grlo", "--config", PAPER, SMOKE, str(over), "--engine", "native", "--backbone", "tiny",
            "--prompts", write_prompts(tmp_path / "p.jsonl", 16), "--policy-init", str(pol), "--reward-model", str(rm),
            "--output-dir", str(out), "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "grlo.cli", *argv], env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and first.poll() is None and not list(out.glob("checkpoints/step_*")):
            time.sleep(0.1)
        assert first.poll() is None and list(out.glob("checkpoints/step_*")), first.communicate()[1][-2000:]
        # frozen, still holding the lock: on an idle machine the tiny run finished its 6 steps while the second
        # trainer started, before the kill below (a CI failure), and the restart then had nothing to resume
        first.send_signal(signal.SIGSTOP)
        second = _grlo(*argv)
        err = second.stderr.strip()
        assert second.returncode == 2 and err.count("\n") == 0, second.stderr[-2000:]
        assert f"output directory is in use by pid {first.pid}" in err and "grlo train-grlo" in err
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (out / "final").exists()
    restart = _grlo(*argv)
    assert restart.returncode == 0, restart.stderr[-2000:]
    said = [ln for ln in restart.stdout.splitlines() if "taking over the lock" in ln]
    assert len(said) == 1 and f"pid {first.pid}" in said[0], restart.stdout[-2000:]
    assert "resumed from" in restart.stdout and (out / "final").is_dir() and not (out / ".grlo-lock").exists()
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == list(range(1, 7))
