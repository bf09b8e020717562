"""Checkpoints that recover (issue 18): each checkpoint's files carry sha256s in its state.json, checked before a
resume; a damaged newest checkpoint (truncated weights, optimizer or RNG state, a flipped bit, an edited state) is
reported in one line and the one before is used; a save that would not fit is refused before anything is written."""

import json
import logging
import shutil

import pytest

from grlo import config as config_mod
from grlo.errors import GrloError
from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
from grlo.train import checkpoint as ckpt
from grlo.train.ppo import PPOTrainer

from test_ppo_trainer import deterministic, write_prompts  # tests/ is on sys.path (pytest rootdir-relative import)

ROOT = config_mod.REPO_ROOT
TINY = """grlo:
  train_batch_size: 8
  max_response_length: 8
  total_training_steps: 3
  save_freq: 1
  keep_last: 2
  actor: {lr: 0.001, ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2}
  critic: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 4}
  rollout: {batch_size: 8}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run killed during step 3: checkpoints after steps 1 and 2 (keep_last 2), the metric rows of steps 1-2."""
    root = tmp_path_factory.mktemp("integrity")
    pol, rm = build_tiny_policy(root / "policy", seed=0), build_tiny_reward_model(root / "rm", seed=0)
    prompts = write_prompts(root / "p.jsonl", 16)
    (root / "over.yaml").write_text(TINY)
    cfg = config_mod.load([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml", root / "over.yaml"])
    out = root / "run"
    real_step = PPOTrainer.step

    def dying_step(self):
        if self.state.step == 2:
            raise KeyboardInterrupt
        return real_step(self)

    trainer = PPOTrainer(cfg, "tiny", str(prompts), str(pol), str(rm), str(out))
    PPOTrainer.step = dying_step
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.train(progress=False)
    finally:
        PPOTrainer.step = real_step
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000001", "step_000002"]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {"cfg": cfg, "args": ("tiny", str(prompts), str(pol), str(rm)), "out": out, "rows": rows,
            "trainer": trainer}


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip_bit(f):
    b = bytearray(f.read_bytes())
    b[len(b) - 100] ^= 0x10  # a bit of a tensor value: the file still parses, the number is wrong
    f.write_bytes(bytes(b))


def _edit_state(d):
    s = json.loads((d / "state.json").read_text())
    s["step"] = 7
    (d / "state.json").write_text(json.dumps(s))


DAMAGE = {
    "truncated actor weights": (lambda d: _truncate(d / "actor" / "model.safetensors"), "actor/model.safetensors"),
    "truncated optimizer state": (lambda d: _truncate(d / "optim.pt"), "optim.pt"),
    "truncated RNG state": (lambda d: _truncate(d / "rng.pt"), "rng.pt"),
    "a flipped bit in the critic weights": (lambda d: _flip_bit(d / "critic" / "model.safetensors"),
                                            "critic/model.safetensors does not match its sha256"),
    "missing optimizer state": (lambda d: (d / "optim.pt").unlink(), "optim.pt is missing"),
    "edited state.json": (_edit_state, "state.json does not match its checksum"),
    "truncated state.json": (lambda d: _truncate(d / "state.json"), "state.json unreadable"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_newest_checkpoint_is_named_and_the_one_before_used(run, tmp_path, case, caplog):
    root = tmp_path / "checkpoints"
    shutil.copytree(run["out"] / "checkpoints", root)
    assert ckpt.damage(root / "step_000002") is None and ckpt.damage(root / "step_000001") is None
    damage, why = DAMAGE[case]
    damage(root / "step_000002")
    assert why in ckpt.damage(root / "step_000002")
    with caplog.at_level(logging.WARNING, logger="grlo.train.checkpoint"):
        assert ckpt.latest_valid(root) == root / "step_000001"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "step_000002 is damaged" in lines[0] and why in lines[0] and "resuming from step_000001" in lines[0]
    assert sorted(p.name for p in root.iterdir()) == ["damaged.step_000002", "step_000001"]  # kept for a look


def test_no_valid_checkpoint_starts_over_with_one_line(run, tmp_path, caplog):
    root = tmp_path / "checkpoints"
    shutil.copytree(run["out"] / "checkpoints", root)
    for d in root.iterdir():
        _truncate(d / "rng.pt")
    with caplog.at_level(logging.WARNING, logger="grlo.train.checkpoint"):
        assert ckpt.latest_valid(root) is None
    assert [("no earlier valid checkpoint: starting over" in r.getMessage()) for r in caplog.records] == [True, True]
    assert sorted(p.name for p in root.iterdir()) == ["damaged.step_000001", "damaged.step_000002"]


def test_truncated_latest_resumes_from_the_one_before(run, tmp_path, caplog):
    """End to end: the newest checkpoint's weights truncated; the rerun reports it in one line, resumes from step 1,
    and step 2 comes out as it did in the first run (the step-1 checkpoint restored everything)."""
    out = tmp_path / "run"
    shutil.copytree(run["out"], out)
    _truncate(out / "checkpoints" / "step_000002" / "actor" / "model.safetensors")
    with caplog.at_level(logging.INFO):
        state = PPOTrainer(run["cfg"], *run["args"], str(out)).train(progress=False)
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("step_000002 is damaged" in m and "resuming from step_000001" in m for m in msgs), msgs
    assert any("resumed from" in r.getMessage() and "step_000001" in r.getMessage() for r in caplog.records)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert state.step == 3 and [r["step"] for r in rows] == [1, 2, 3]
    assert [deterministic(r) for r in rows[:2]] == [deterministic(r) for r in run["rows"]]
    assert (out / "final" / "model.safetensors").exists() and not (out / "checkpoints").exists()


def test_save_without_space_is_one_line_and_writes_nothing(run, tmp_path, monkeypatch):
    class Usage:
        free = 2**19

    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(GrloError, match=r"needs about [0-9.]+ MiB free \(2x its [0-9.]+ MiB of tensors\), 0\.5 MiB "
                                        r"are free") as e:
        ckpt.save(tmp_path / "checkpoints" / "step_000009", run["trainer"])
    assert "\n" not in str(e.value) and not (tmp_path / "checkpoints").exists()
    need = ckpt.SPACE_FACTOR * ckpt.tensor_bytes([run["trainer"].actor.state_dict(), run["trainer"].critic.state_dict()])
    Usage.free = int(need * 10)  # enough: the save goes through and verifies
    ckpt.save(tmp_path / "checkpoints" / "step_000009", run["trainer"])
    assert ckpt.damage(tmp_path / "checkpoints" / "step_000009") is None
