"""verl checkpoints carry their files' sha256 (grlo.train.verl.seal): before verl resumes, a damaged checkpoint
(truncated weights, optimizer or data state; a flipped bit; an edited or lost checksum file) is named in one line and
moved aside, and verl resumes from the newest sound one or starts over. Attacked on a verl-shaped tree here; the
real trainer's seal is checked in tests/verl_env/test_verl_cpu_e2e.py."""

import logging
import shutil
from types import SimpleNamespace

import pytest

from grlo.train.verl import finalize as F
from grlo.train.verl import run as R
from grlo.train.verl import seal as S


def save(root, step, sealed=True):
    """What verl 0.6.1 writes for a step (actor and critic shards, the dataloader state), then its tracker."""
    d = root / f"global_step_{step}"
    for rel, data in (("actor/model_world_size_1_rank_0.pt", b"actor" * 1000), ("actor/optim_world_size_1_rank_0.pt",
                      b"adam" * 2000), ("actor/huggingface/config.json", b"{}"), ("critic/model_world_size_1_rank_0.pt",
                      b"critic" * 1000), ("data.pt", b"sampler" * 10)):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data + bytes([step]))
    if sealed:
        S.seal(d)
    (root / F.TRACKER).write_text(str(step))
    return d


def truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def flip(f):
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x01
    f.write_bytes(bytes(b))


DAMAGE = {
    "truncated weights": ("actor/model_world_size_1_rank_0.pt", truncate, "does not match its sha256"),
    "truncated optimizer": ("actor/optim_world_size_1_rank_0.pt", truncate, "does not match its sha256"),
    "flipped bit in the critic": ("critic/model_world_size_1_rank_0.pt", flip, "does not match its sha256"),
    "truncated data state": ("data.pt", truncate, "does not match its sha256"),
    "lost shard": ("actor/model_world_size_1_rank_0.pt", lambda f: f.unlink(), "is missing"),
    "edited checksum file": (S.SEAL, lambda f: f.write_text("{not json"), "unreadable"),
    "emptied checksum file": (S.SEAL, lambda f: f.write_text('{"files": {}}'), "lists no files"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_latest_checkpoint_is_named_moved_aside_and_the_one_before_resumed(tmp_path, case, caplog):
    rel, hurt, why = DAMAGE[case]
    save(tmp_path, 1)
    latest = save(tmp_path, 2)
    hurt(latest / rel)
    with caplog.at_level(logging.WARNING):
        assert S.check(tmp_path) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "global_step_2 is damaged" in lines[0] and why in lines[0], lines
    assert "resuming from global_step_1" in lines[0]
    assert (tmp_path / F.TRACKER).read_text() == "1"  # verl's resume_mode=auto loads what its tracker names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [F.TRACKER, "damaged.global_step_2", "global_step_1"])


def test_no_sound_checkpoint_left_starts_over_in_one_line(tmp_path, caplog):
    """keep_last 1 (the default): verl removed the actor of step 1 when it saved step 2, so a damaged step 2 leaves
    nothing to resume; the tracker goes (verl then trains from step 0, as with no checkpoint)."""
    old = save(tmp_path, 1)
    shutil.rmtree(old / "actor")
    shutil.rmtree(old / "critic")  # what verl's max_ckpt_to_keep leaves: global_step_1/data.pt
    truncate(save(tmp_path, 2) / "actor/model_world_size_1_rank_0.pt")
    with caplog.at_level(logging.WARNING):
        assert S.check(tmp_path) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "no earlier valid checkpoint: starting over" in lines[0], lines
    assert not (tmp_path / F.TRACKER).exists() and (tmp_path / "damaged.global_step_2").is_dir()


def test_a_sound_checkpoint_is_resumed_silently_and_an_unsealed_one_with_a_warning(tmp_path, caplog):
    save(tmp_path, 3)
    with caplog.at_level(logging.WARNING):
        assert S.check(tmp_path) == 3
    assert not caplog.records and (tmp_path / F.TRACKER).read_text() == "3"
    save(tmp_path, 4, sealed=False)  # killed while it was hashed (verl had written its tracker)
    with caplog.at_level(logging.WARNING):
        assert S.check(tmp_path) == 4
    assert len(caplog.records) == 1 and "resumed unverified" in caplog.records[0].getMessage()


def test_the_tracker_naming_a_lost_checkpoint_starts_over(tmp_path, caplog):
    (tmp_path / F.TRACKER).write_text("5")
    with caplog.at_level(logging.WARNING):
        assert S.check(tmp_path) is None
    assert len(caplog.records) == 1 and "starting over" in caplog.records[0].getMessage()
    assert not (tmp_path / F.TRACKER).exists()
    assert S.check(tmp_path / "none") is None  # a first run: nothing to check


def test_the_seal_lists_every_file_of_the_step_but_itself(tmp_path):
    d = save(tmp_path, 7)
    body = S.seal(d)
    assert body["step"] == 7 and sorted(body["files"]) == sorted(
        str(f.relative_to(d)) for f in d.rglob("*") if f.is_file() and f.name != S.SEAL)
    assert S.damage(d) is None


def test_a_finished_run_whose_last_checkpoint_is_damaged_trains_again_and_cleans_up(tmp_path, caplog):
    """The verl run step checks before it decides: a finished run whose final checkpoint was damaged is not merged
    from it; verl resumes from the one before, and once it finishes the damaged copy is removed."""
    save(tmp_path, 1)
    truncate(save(tmp_path, 2) / "data.pt")
    F.mark_finished(tmp_path, planned_steps=2)
    calls = []

    def launcher(*a, **k):
        calls.append((tmp_path / F.TRACKER).read_text())
        save(tmp_path, 2)  # verl trains step 2 again and saves it
        return 0

    p = {"paths": SimpleNamespace(checkpoints=str(tmp_path)), "cmd": ["main_ppo"], "env": {"VERL_FILE_LOGGER_PATH": "x"},
         "nnodes": 1, "gpus_per_node": 1, "cpu": False, "logs": str(tmp_path / "logs"), "total_steps": 2}
    with caplog.at_level(logging.INFO):
        assert R.train_and_finish(p, 6379, str(tmp_path), lambda: None, run=launcher) == 2
    assert calls == ["1"] and "resumed from verl's checkpoint at step 1" in caplog.text
    assert not (tmp_path / "damaged.global_step_2").exists() and F.finished_step(tmp_path) == 2
