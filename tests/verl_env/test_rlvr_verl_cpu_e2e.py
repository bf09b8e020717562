"""The RLVR stage on verl (`rlvr.engine: verl`) end to end on CPU, as the workflow's train_rlvr rule runs it:
`grlo train-rlvr` with a tiny Qwen3 policy (ChatML tokenizer, grlo.models.tiny) and the smoke recipe, through verl
0.6.1's real `main_ppo` with GRPO and our General-Reasoner reward function. The run is killed (SIGKILL to every
process of it: the CLI, main_ppo, Ray and its workers) once the step-1 checkpoint is sealed, then the same command
resumes from it (verl's own log starts training at step 2), merges final/ and writes metrics.jsonl with the TRL
engine's names. A rerun with another seed refuses the checkpoints of this one instead of resuming them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grlo.data.rlvr_data import generate_fixture
from grlo.io import write_jsonl
from grlo.models.tiny import build_tiny_policy
from grlo.train.verl import seal
from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1200  # a loaded 2-core machine
RECIPE = """
seed: 3
rlvr:
  engine: verl
  train: {max_steps: 2, save_steps: 1, max_completion_length: 12, max_prompt_tokens: 128}
  stages:
    rlvr: {max_steps: 2}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grlo.cli", *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "GRLO_VERL_PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "GRLO_CPU_THREADS": "1", "OMP_NUM_THREADS": "1"}


def kill_tree(proc: subprocess.Popen) -> None:
    """A crash: the CLI and every process under it (main_ppo, Ray's GCS and raylet, the workers) at once."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_steps(path: Path) -> list[int]:
    return [r["step"] for r in rows(path) if "training/global_step" in r["data"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("rlvr-verl")
    (base / "recipe.yaml").write_text(RECIPE)
    policy = build_tiny_policy(base / "policy", seed=0)
    write_jsonl(str(base / "train.jsonl"), generate_fixture(8, seed=0))
    out = base / "out"
    cmd = cli("train-rlvr", "--config", str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "smoke.yaml"),
              str(base / "recipe.yaml"),
              "--backbone", "tiny", "--init", str(policy), "--data", str(base / "train.jsonl"), "--stage", "rlvr",
              "--output-dir", str(out))
    checkpoints = out / "verl" / "checkpoints"
    with open(base / "attempt-1.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=base, env=env(), stdout=log, stderr=subprocess.STDOUT)
        t0, killed = time.monotonic(), False
        try:
            while proc.poll() is None and time.monotonic() - t0 < TIMEOUT_S:
                if (seal.sealed_step(checkpoints) or 0) >= 1:
                    kill_tree(proc)
                    killed = True
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                kill_tree(proc)
    assert killed, (base / "attempt-1.log").read_text()[-3000:]
    second = subprocess.run(cmd, cwd=base, env=env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert second.returncode == 0, second.stderr[-3000:]
    return {"base": base, "out": out, "cmd": cmd, "second": second}


def test_killed_rlvr_run_resumes_from_its_checkpoint_and_merges(run):
    out = run["out"]
    logs = out / "verl" / "logs"
    first, second = training_steps(logs / "attempt-1.metrics.jsonl"), training_steps(logs / "attempt-2.metrics.jsonl")
    assert first[0] == 1 and second == [2]  # the rerun resumed at step 2: it did not train step 1 again
    assert "resumed from verl's checkpoint at step 1" in run["second"].stdout  # grlo's log (stdout)
    # GRPO's own metrics from verl's log, with the TRL engine's names beside them
    m = rows(out / "metrics.jsonl")
    steps = [r for r in m if "epoch" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert r["reward_mean"] == r["reward/score_mean"] and -0.5 <= r["reward_mean"] <= 1.0
        assert "completion_length_mean" in r and "loss" in r and "grad_norm" in r
    man = json.loads((out / "final" / "manifest.json").read_text())
    assert man["engine"] == "verl" and man["stage"] == "rlvr" and man["steps"] == 2 and man["cpu"] is True
    assert "algorithm.adv_estimator=grpo" in man["verl_overrides"]
    assert "trainer.device=cpu" in man["verl_overrides"]
    assert not (out / "verl" / "checkpoints").exists()  # removed once merged (keep_checkpoints false)


def test_the_merged_model_is_the_trained_one_and_loads(run):
    import torch
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(run["out"] / "final", torch_dtype=torch.float32)
    init = AutoModelForCausalLM.from_pretrained(run["base"] / "policy", torch_dtype=torch.float32)
    a, b = final.state_dict(), init.state_dict()
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two GRPO steps moved the weights


def test_a_rerun_with_another_seed_refuses_this_runs_checkpoints(run, tmp_path):
    """Checkpoints of another recipe are never resumed: a leftover step with this run's fingerprint, then the same
    command with another seed, stops on one line naming the seed and the RLVR stage's own `rlvr.fresh`."""
    out = tmp_path / "out"
    (out / "verl" / "checkpoints" / "global_step_1").mkdir(parents=True)
    fp = json.loads((run["out"] / "verl" / "run_fingerprint.json").read_text())
    (out / "verl" / "run_fingerprint.json").write_text(json.dumps(fp))
    other = tmp_path / "seed.yaml"
    other.write_text(RECIPE.replace("seed: 3", "seed: 4"))
    cmd = [a if a != str(run["out"]) else str(out) for a in run["cmd"]]
    cmd[cmd.index(str(run["base"] / "recipe.yaml"))] = str(other)
    r = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()[-1]
    assert "(run.seed)" in err and "rlvr.fresh: true" in err, err  # the stage's own switch, not grlo.fresh
    assert not (out / "final").exists()
