"""Runs that survive: a run killed with SIGTERM in another process resumes to the uninterrupted run's results; a resume
with other settings is refused naming the keys; temporary litter is cleaned; metrics survive a deleted metrics.jsonl."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from grlo import config as config_mod
from grlo.errors import GrloError
from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
from grlo.train import ppo
from grlo.train.ppo import PPOTrainer, StopOnSignal, TrainingInterrupted

from test_ppo_trainer import deterministic, write_prompts  # tests/ is on sys.path (pytest rootdir-relative import)

ROOT = config_mod.REPO_ROOT
BASE = [str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "smoke.yaml")]
TINY = """grlo:
  train_batch_size: 8
  max_response_length: 8
  total_training_steps: {steps}
  save_freq: {save_freq}
  actor: {{lr: {lr}, ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2}}
  critic: {{ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 4}}
  rollout: {{batch_size: 8}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    pol, rm = build_tiny_policy(root / "policy", seed=0), build_tiny_reward_model(root / "rm", seed=0)
    return str(pol), str(rm), write_prompts(root / "p.jsonl", 16), root


def overrides(path, steps, save_freq=-1, lr=1e-3):
    path.write_text(TINY.format(steps=steps, save_freq=save_freq, lr=lr))
    return [*BASE, str(path)]


def final_weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


def rows_of(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def parts(root):
    return [p for p in root.rglob("*.part")]


def test_sigterm_in_another_process_then_resume_equals_uninterrupted_run(setup, tmp_path):
    """The two-process kill-and-resume test: `grlo train-grlo` in a subprocess, SIGTERM mid-run, exit 143 with a
    checkpoint and no litter; metrics.jsonl deleted (as Snakemake deletes a failed job's outputs); the rerun
    finishes with the metrics and final weights of an uninterrupted run."""
    pol, rm, prompts, _ = setup
    files = overrides(tmp_path / "over.yaml", steps=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocesses run with OMP_NUM_THREADS=1: same float reductions
    try:
        ref = PPOTrainer(config_mod.load(files), "tiny", prompts, pol, rm, str(tmp_path / "ref"),
                         "over.yaml").train(progress=False)
    finally:
        torch.set_num_threads(threads)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "grlo.cli", "train-grlo", "--config", *files, "--engine", "native",
           "--backbone", "tiny", "--prompts", prompts, "--policy-init", pol, "--reward-model", rm,
           "--output-dir", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and len((out / "metrics.jsonl").read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0][-2000:]
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGTERM, text[-2000:]
    assert "stopped by signal 15: checkpoint saved at step" in text
    ckpts = sorted((out / "checkpoints").glob("step_*"))
    assert len(ckpts) == 1 and 2 <= int(ckpts[0].name.split("_")[1]) < 10
    assert not (out / "final").exists() and not parts(out)
    assert [r["step"] for r in rows_of(out)] == list(range(1, int(ckpts[0].name.split("_")[1]) + 1))

    (out / "metrics.jsonl").unlink()  # a failed Snakemake job loses its declared outputs
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = rows_of(out)
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert [deterministic(r) for r in rows] == [deterministic(r) for r in ref.metrics]
    wa, wb = final_weights(tmp_path / "ref"), final_weights(out)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_other_settings_and_fresh_starts_over(setup, tmp_path):
    pol, rm, prompts, _ = setup
    out = tmp_path / "run"
    real_step = PPOTrainer.step

    def dying_step(self):
        if self.state.step == 2:  # a run killed during step 3, after the step-2 checkpoint
            raise KeyboardInterrupt
        return real_step(self)

    PPOTrainer.step = dying_step
    try:
        with pytest.raises(KeyboardInterrupt):
            PPOTrainer(config_mod.load(overrides(tmp_path / "a.yaml", steps=3, save_freq=1)), "tiny", prompts, pol,
                       rm, str(out)).train(progress=False)
    finally:
        PPOTrainer.step = real_step
    assert [p.name for p in (out / "checkpoints").glob("step_*")] == ["step_000002"]  # keep_last 1

    changed = config_mod.load(overrides(tmp_path / "b.yaml", steps=3, save_freq=1, lr=2e-3))
    with pytest.raises(GrloError, match=r"other settings \(grlo\.actor\.lr\).*set grlo\.fresh: true in your config"):
        PPOTrainer(changed, "tiny", prompts, pol, rm, str(out)).train(progress=False)
    shorter = config_mod.load(overrides(tmp_path / "c.yaml", steps=1))
    with pytest.raises(GrloError, match="at step 2, past the 1 steps configured"):
        PPOTrainer(shorter, "tiny", prompts, pol, rm, str(out)).train(progress=False)
    other_prompts = write_prompts(tmp_path / "p2.jsonl", 16, seed=1)
    same = config_mod.load(overrides(tmp_path / "d.yaml", steps=3, save_freq=1, lr=1e-3))
    with pytest.raises(GrloError, match=r"inputs\.prompts"):
        PPOTrainer(same, "tiny", other_prompts, pol, rm, str(out)).train(progress=False)

    # litter of an earlier kill goes at the next start; the same settings resume (one step left), with the rows
    # before the checkpoint restored although metrics.jsonl was deleted
    (out / ".metrics.jsonl.x1.part").write_text("half")
    (out / "checkpoints" / ".step_000003.x2.part").mkdir()
    before = rows_of(out)
    (out / "metrics.jsonl").unlink()
    state = PPOTrainer(same, "tiny", prompts, pol, rm, str(out)).train(progress=False)
    assert rows_of(out)[:2] == before[:2] and [r["step"] for r in rows_of(out)] == [1, 2, 3] and state.step == 3
    assert not parts(out) and not (out / "checkpoints").exists()  # a finished run drops its resume state
    (out / "checkpoints" / "step_000002").mkdir(parents=True)  # as if interrupted again: --fresh must clear it
    (out / "checkpoints" / "step_000002" / "state.json").write_text('{"step": 2}')

    fresh = config_mod.load(overrides(tmp_path / "e.yaml", steps=1, lr=2e-3))
    state = PPOTrainer(fresh, "tiny", prompts, pol, rm, str(out)).train(progress=False, fresh=True)
    assert [r["step"] for r in rows_of(out)] == [1] and not (out / "checkpoints").exists()


def test_stop_on_signal_decides_between_checkpoint_and_immediate_stop():
    with StopOnSignal(grace_s=30.0, save_s=1.0) as stop:
        stop.step_started()
        stop.step_finished()  # a fast step: the rest of the step and a save fit in the grace time
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.signum == signal.SIGTERM
        with pytest.raises(TrainingInterrupted):  # a second signal: at once
            os.kill(os.getpid(), signal.SIGINT)
    with StopOnSignal(grace_s=5.0, save_s=10.0) as stop:  # a save would not finish before the kill
        with pytest.raises(TrainingInterrupted) as e:
            os.kill(os.getpid(), signal.SIGTERM)
        assert e.value.step == -1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_fresh_flag_reaches_the_trainer():
    import argparse

    p = argparse.ArgumentParser()
    ppo.add_arguments(p)
    args = p.parse_args(["--config", "c.yaml", "--backbone", "b", "--prompts", "p", "--policy-init", "i",
                         "--reward-model", "r", "--output-dir", "o", "--fresh"])
    assert args.fresh and "--fresh" in ppo._argv_of(args)


def test_grlo_fresh_in_the_config_reaches_train_grlo_and_rlvr_workers(tmp_path, capsys):
    """The rules pass no --fresh: train_grlo.run reads grlo.fresh from the config files before it picks the engine
    (verl or native); rlvr.run reads rlvr.fresh and hands --fresh to its accelerate workers."""
    import argparse

    from grlo import cli
    from grlo.train import rlvr

    over = tmp_path / "fresh.yaml"
    over.write_text("grlo:\n  fresh: true\n")
    argv = ["train-grlo", "--config", *BASE, str(over), "--backbone", "qwen3-4b-base", "--dry-run"]
    assert cli.main([*argv, "--engine", "native"]) == 0
    assert "--fresh" in capsys.readouterr().out.split()  # native: the launch command carries it
    assert cli.main([*argv[:4], "--backbone", "qwen3-4b-base", "--engine", "native", "--dry-run"]) == 0
    assert "--fresh" not in capsys.readouterr().out.split()
    p = argparse.ArgumentParser()
    rlvr.add_arguments(p)
    args = p.parse_args(["--config", "c.yaml", "--backbone", "b", "--init", "i", "--data", "d", "--stage", "rlvr",
                         "--output-dir", "o", "--fresh"])
    assert "--fresh" in rlvr.launch_command(args, 2)  # the accelerate workers start over too
