"""verl 0.6.1's real trainer end to end on CPU (grlo.train.verl.cpu): `grlo rehearse` runs the paper config's
override set at tiny sizes through `python -m verl.trainer.main_ppo`: validation and step 1, a SIGKILL once the
step-1 checkpoint exists, the resume, verl's own model merger, the metrics conversion. A second rehearsal with the
same seed, uninterrupted, must give the same metrics (verl's full-determinism gate compares two PPO runs' curves):
that one comparison checks determinism and that the resumed run trained on what the uninterrupted one did. The paper
config trains the GRLO -> RLVR stage on verl too (rlvr.engine: verl), so both rehearsals go on with that stage's GRPO
launch from their GRLO final/, killed and resumed in the first, and the two stages' metrics must agree as well."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

ROOT = Path(__file__).resolve().parents[2]
PAPER = str(ROOT / "config" / "config.yaml")
TIMEOUT_S = 1800  # a loaded 2-core machine


def rehearse(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "grlo.cli", "rehearse", "--config", PAPER, "--backbone",
                           "qwen3-4b-base", "--output", str(out), *extra], cwd=out.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    out = tmp_path_factory.mktemp("rehearse") / "a"
    r = rehearse(out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rehearsal_trains_is_killed_resumes_and_merges(killed_and_resumed):
    out = killed_and_resumed
    rec = json.loads((out / "rehearsal.json").read_text())
    assert rec["ok"] and [p["phase"] for p in rec["phases"]] == ["setup", "train", "resume", "merge", "metrics",
                                                                  "rlvr-train", "rlvr-resume"]
    logs = out / "verl" / "logs"
    first, second = rows(logs / "attempt-1.metrics.jsonl"), rows(logs / "attempt-2.metrics.jsonl")
    train = lambda rs: [r["step"] for r in rs if "training/global_step" in r["data"]]  # noqa: E731
    # the killed attempt trained step 1 (and was killed before finishing); the resumed one starts at step 2
    assert train(first)[0] == 1 and 2 not in train(first) or train(first) == [1, 2]
    assert train(second) == [2]
    # verl's file logger wrote the tensor metrics of every step (0.6.1's own dies on them after step 1)
    assert all(isinstance(r["data"]["global_seqlen/mean"], (int, float)) for r in second if r["step"] == 2)
    m = rows(out / "metrics.jsonl")
    assert [r["step"] for r in m if "epoch" in r] == [1, 2] and m[0]["step"] == 0
    assert all(r["epoch"] == 0 for r in m if "epoch" in r) and all("reward/rm_mean" in r for r in m if "epoch" in r)
    man = json.loads((out / "final" / "manifest.json").read_text())
    assert man["engine"] == "verl" and man["steps"] == 2 and man["cpu"] is True
    assert "data.sampler.class_path" in man["deviations"] and "trainer.device" in man["deviations"]


def test_the_grlo_rlvr_stage_trains_from_grlo_final_is_killed_resumes_and_merges(killed_and_resumed):
    """The paper's GRLO -> RLVR launch (GRPO with its KL loss, so a reference model too) at tiny sizes, from the
    rehearsal's GRLO final/ (tied), through rlvr_launch: killed after the step-1 checkpoint, resumed at step 2."""
    from safetensors import safe_open

    out = killed_and_resumed / "grlo-rlvr"
    logs = out / "verl" / "logs"
    train = lambda rs: [r["step"] for r in rs if "training/global_step" in r["data"]]  # noqa: E731
    assert train(rows(logs / "attempt-1.metrics.jsonl")) == [1]
    assert train(rows(logs / "attempt-2.metrics.jsonl")) == [2]
    assert not (logs / "attempt-3.metrics.jsonl").exists()
    man = json.loads((out / "final" / "manifest.json").read_text())
    assert man["stage"] == "grlo-rlvr" and man["engine"] == "verl" and man["cpu"] is True and man["steps"] == 2
    assert man["init"] == str(killed_and_resumed / "final")
    assert "algorithm.adv_estimator=grpo" in man["verl_overrides"]
    assert "actor_rollout_ref.actor.use_kl_loss=True" in man["verl_overrides"]  # the paper's beta > 0
    m = rows(out / "metrics.jsonl")
    assert [r["step"] for r in m if "epoch" in r] == [1, 2]
    assert all("reward_mean" in r and "actor/kl_loss" in r for r in m if "epoch" in r)  # TRL's names beside verl's
    keys = set()
    for f in (out / "final").glob("*.safetensors"):
        with safe_open(str(f), "pt") as h:
            keys |= set(h.keys())
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" not in keys


def test_verls_checkpoints_carry_their_checksums_and_a_damaged_one_is_set_aside(killed_and_resumed, tmp_path):
    """Every checkpoint the real trainer saved (in the killed attempt and the resumed one) carries its files' sha256
    (grlo.train.verl.seal, installed in verl's trainer process); truncating a shard of the latest is caught before a
    resume (copy of the run's checkpoints)."""
    import shutil

    from grlo.train.verl import finalize, seal

    ck = killed_and_resumed / "verl" / "checkpoints"
    steps = sorted(p for p in ck.glob("global_step_*") if (p / "actor").is_dir())
    assert steps and all(seal.damage(p) is None for p in steps), steps
    body = json.loads((steps[-1] / seal.SEAL).read_text())
    assert any(k.startswith("actor/") and k.endswith(".pt") for k in body["files"]) and "data.pt" in body["files"]
    copy = tmp_path / "checkpoints"
    shutil.copytree(ck, copy)
    latest = finalize.latest_step(copy)
    shard = sorted((copy / f"global_step_{latest}" / "actor").glob("model_world_size_*_rank_0.pt"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    found = seal.check(copy)
    assert found != latest and (copy / f"damaged.global_step_{latest}").is_dir()
    assert finalize.latest_step(copy) == found  # None: the tracker is gone and verl starts over


def test_the_merged_tied_model_loads_with_one_head(killed_and_resumed):
    """Qwen3 (like Qwen3-4B) ties its embeddings: verl 0.6.1's merger writes lm_head.weight too; final/ keeps one
    copy, so transformers ties the head to the embedding (the trained embedding)."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    final = killed_and_resumed / "final"
    keys = set()
    for f in final.glob("*.safetensors"):
        with safe_open(str(f), "pt") as h:
            keys |= set(h.keys())
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" not in keys
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    policy = AutoModelForCausalLM.from_pretrained(killed_and_resumed / "models" / "policy")
    assert not model.model.embed_tokens.weight.equal(policy.model.embed_tokens.weight)  # trained, not the init


def test_same_seed_uninterrupted_rehearsal_gives_the_same_metrics(killed_and_resumed, tmp_path):
    out = tmp_path / "b"
    r = rehearse(out, "--no-kill")
    assert r.returncode == 0, r.stderr[-3000:]
    volatile = ("time/", "timing_s/", "timing_per_token_ms/", "perf/", "gpu/")
    curve = lambda p: [{k: v for k, v in row.items() if not k.startswith(volatile)}  # noqa: E731
                       for row in rows(p / "metrics.jsonl")]
    a, b = curve(killed_and_resumed), curve(out)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 1, 2]
    for ra, rb in zip(a, b):
        # the resumed attempt validates once more at its start step (verl 0.6.1's val_before_train also runs after a
        # resume): only validation keys may be extra; every metric both runs logged must be equal, bit for bit
        extra = set(ra) ^ set(rb)
        assert all(k.startswith("val") for k in extra), (ra["step"], extra)
        assert {k: ra[k] for k in set(ra) & set(rb)} == {k: rb[k] for k in set(ra) & set(rb)}, ra["step"]
        assert any(k.startswith(("actor/", "critic/")) for k in ra) or ra["step"] == 0
    # the GRLO -> RLVR stage: no validation, so the killed-and-resumed curve equals the uninterrupted one whole
    a, b = curve(killed_and_resumed / "grlo-rlvr"), curve(out / "grlo-rlvr")
    assert [r["step"] for r in a] == [1, 2] and a == b


def test_verls_file_logger_writes_tensor_metrics_and_flushes(tmp_path, monkeypatch):
    """verl's own Tracking with the `file` backend, after the plugin is imported (as verl's TaskRunner does)."""
    import numpy as np
    import torch

    import grlo.train.verl.plugin  # noqa: F401
    from verl.utils.tracking import Tracking

    path = tmp_path / "m.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    t = Tracking(project_name="p", experiment_name="e", default_backend=["file"])
    t.log({"global_seqlen/mean": torch.tensor(7.5), "n": np.int64(3), "v": np.float32(0.25), "x": 1.0}, step=1)
    # readable before the logger is closed: a killed run keeps its rows
    assert json.loads(path.read_text()) == {"step": 1, "data": {"global_seqlen/mean": 7.5, "n": 3, "v": 0.25,
                                                                "x": 1.0}}
    # whatever else a trainer or a plugin logs: bf16 and multi-element tensors, numpy arrays and bools, values JSON
    # has no type for; the run goes on and the numbers stay numbers
    from decimal import Decimal

    t.log({"bf16": torch.tensor(0.5, dtype=torch.bfloat16), "hist": torch.tensor([1, 2]), "arr": np.arange(2),
           "flag": np.bool_(True), "path": tmp_path / "x", "dec": Decimal("0.25"), (1, 2): 3.0}, step=2)
    second = json.loads(path.read_text().splitlines()[1])
    assert second == {"step": 2, "data": {"bf16": 0.5, "hist": [1, 2], "arr": [0, 1], "flag": True,
                                          "path": str(tmp_path / "x"), "dec": "0.25", "(1, 2)": 3.0}}
