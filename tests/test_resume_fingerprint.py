"""The resume fingerprint: a checkpoint is resumed only by a run with the same seed, reward model, inputs and settings
(grlo/train/ppo.py builds it, grlo/train/checkpoint.py computes and checks it); anything else is refused naming the
keys that differ."""

import json
import os

import pytest

from grlo.errors import GrloError
from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
from grlo.train import checkpoint as ckpt
from grlo.train.ppo import PPOTrainer

from test_ppo_trainer import tiny_cfg, write_prompts  # tests/ is on sys.path (pytest rootdir-relative import)


# unit rules first: a failing rule stops a run (-x) before the trainer fixture is built
def test_fingerprint_rules(tmp_path):
    section = {"actor": {"lr": 1e-3, "clip": [0.2, 0.28]}, "save_freq": 5, "seed": 3, "engine": "native"}
    a = tmp_path / "a.txt"
    a.write_text("x")
    fp = ckpt.fingerprint(section, {"data": str(a)}, {"code.grlo": "1"}, {"seed": 3, "name": "t"})
    assert fp == {"grlo.actor.lr": "0.001", "grlo.actor.clip": "[0.2, 0.28]", "grlo.seed": "3",
                  "inputs.data": ckpt.input_id(a), "code.grlo": "1", "run.seed": "3", "run.name": '"t"'}
    # a nested section name: the resumable keys are those right below it
    nested = ckpt.fingerprint({"x": {"save_freq": 1}, "save_freq": 2}, {}, {}, name="rlvr.train")
    assert nested == {"rlvr.train.x.save_freq": "1"}


def test_fingerprint_values_are_canonical_json():
    # key order inside a value (a list of mappings, a mapping in `extra`) does not change the fingerprint
    a = ckpt.fingerprint({"x": [{"b": 1, "a": 2}]}, {}, {}, {"d": {"b": 1, "a": 2}})
    assert a == {"grlo.x": '[{"a": 2, "b": 1}]', "run.d": '{"a": 2, "b": 1}'}
    assert a == ckpt.fingerprint({"x": [{"a": 2, "b": 1}]}, {}, {}, {"d": {"a": 2, "b": 1}})


def test_input_id_of_files_and_directories(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    import hashlib

    assert ckpt.input_id(f) == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    big = ckpt.input_id(f, hash_limit=2)  # above the limit: size and mtime
    assert big == f"size:3,mtime_ns:{os.stat(f).st_mtime_ns}"
    assert ckpt.input_id(f, hash_limit=3).startswith("sha256:")
    assert ckpt.input_id(tmp_path / "nope") == "missing"
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "w").write_bytes(b"1")
    (d / ".hidden").write_bytes(b"ignored")
    first = ckpt.input_id(d)
    assert first.startswith("dir:")
    (d / ".hidden").write_bytes(b"changed")
    assert ckpt.input_id(d) == first  # hidden files (e.g. locks) are not part of the identity
    (d / "sub" / "w").write_bytes(b"2")
    assert ckpt.input_id(d) != first
    (d / "sub" / "w").write_bytes(b"1")
    (d / "sub" / "w").rename(d / "sub" / "v")
    assert ckpt.input_id(d) != first  # a renamed file changes the identity


def test_check_fingerprint_names_the_keys():
    ckpt.check_fingerprint({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, "x")
    with pytest.raises(GrloError) as e:
        ckpt.check_fingerprint(None, {"a": "1"}, "x")
    assert str(e.value) == ("x: checkpoint has no run fingerprint (written by an older grlo): set grlo.fresh: true "
                            "in your config for one run (--fresh on the command line) to start over")
    eight = {f"k{i}": "1" for i in range(8)}
    with pytest.raises(GrloError, match=r"\(k0, k1, k2, k3, k4, k5, k6, k7\): restore") as e:
        ckpt.check_fingerprint(eight, {}, "x")
    assert "more" not in str(e.value)
    with pytest.raises(GrloError, match=r"other settings \(b, c\): restore them"):
        ckpt.check_fingerprint({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "0"}, "x")
    many = {f"k{i:02d}": str(i) for i in range(9)}
    with pytest.raises(GrloError, match=r"\(k00, k01, k02, k03, k04, k05, k06, k07 and 1 more\)") as e:
        ckpt.check_fingerprint(many, {}, "where")
    assert str(e.value).startswith("where: ")
    # the way out names the stage's own switch (the RLVR trainer passes rlvr.fresh), in both refusals
    with pytest.raises(GrloError) as e:
        ckpt.check_fingerprint({"a": "1"}, {"a": "2"}, "ck", fresh_key="rlvr.fresh")
    assert str(e.value) == ("ck: checkpoint was written by a run with other settings (a): restore them to resume, or set "
                            "rlvr.fresh: true in your config for one run (--fresh on the command line) to start over")
    with pytest.raises(GrloError, match=r"older grlo\): set rlvr.fresh: true"):
        ckpt.check_fingerprint(None, {"a": "1"}, "ck", fresh_key="rlvr.fresh")


def test_code_version_hashes_the_sources():
    a = ckpt.code_version(("grlo.train.losses",), libraries=("torch",))
    b = ckpt.code_version(("grlo.train.losses", "grlo.train.advantages"), libraries=("torch",))
    import grlo

    assert a["code.grlo"] == grlo.__version__ and set(a) == {"code.grlo", "code.sources_sha256", "code.torch"}
    assert a["code.sources_sha256"] != b["code.sources_sha256"] and len(a["code.sources_sha256"]) == 64
    assert ckpt.code_version(("grlo.train.losses",), libraries=("no-such-dist-xyz",))["code.no-such-dist-xyz"] == \
        "absent"


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run killed during step 2, after its step-1 checkpoint: (cfg, prompts, policy, rm, output dir)."""
    root = tmp_path_factory.mktemp("fingerprint")
    pol, rm = str(build_tiny_policy(root / "policy", seed=0)), str(build_tiny_reward_model(root / "rm", seed=0))
    prompts = write_prompts(root / "p.jsonl", 8)
    cfg = tiny_cfg(total_training_steps=2, save_freq=1, max_response_length=4)
    out = root / "run"
    real_step = PPOTrainer.step

    def dying_step(self):
        if self.state.step == 1:
            raise KeyboardInterrupt
        return real_step(self)

    PPOTrainer.step = dying_step
    try:
        with pytest.raises(KeyboardInterrupt):
            PPOTrainer(cfg, "tiny", prompts, pol, rm, str(out)).train(progress=False)
    finally:
        PPOTrainer.step = real_step
    assert [p.name for p in (out / "checkpoints").glob("step_*")] == ["step_000001"]
    return cfg, prompts, pol, rm, out, root


def _refused(cfg, prompts, pol, rm, out, key):
    with pytest.raises(GrloError, match=rf"other settings \({key.replace('.', chr(92) + '.')}\).*--fresh"):
        PPOTrainer(cfg, "tiny", prompts, pol, rm, str(out)).train(progress=False)


def test_resume_with_another_seed_is_refused(interrupted):
    cfg, prompts, pol, rm, out, _ = interrupted
    other = {**cfg, "seed": 1}  # the top-level seed (config.yaml `seed`), not a key of the grlo section
    _refused(other, prompts, pol, rm, out, "run.seed")


def test_resume_with_another_reward_model_is_refused(interrupted):
    cfg, prompts, pol, rm, out, root = interrupted
    other_rm = str(build_tiny_reward_model(root / "rm_other", seed=1))
    _refused(cfg, prompts, pol, other_rm, out, "inputs.reward_model")


def test_resume_with_another_policy_init_is_refused(interrupted):
    cfg, prompts, pol, rm, out, root = interrupted
    other_pol = str(build_tiny_policy(root / "policy_other", seed=1))
    with pytest.raises(GrloError, match=r"inputs\.policy_init"):
        PPOTrainer(cfg, "tiny", prompts, other_pol, rm, str(out)).train(progress=False)


def test_the_saved_fingerprint_names_seed_reward_model_and_processes(interrupted):
    cfg, prompts, pol, rm, out, _ = interrupted
    saved = ckpt.read_state(out / "checkpoints" / "step_000001")["fingerprint"]
    assert saved["run.seed"] == "0" and saved["run.processes"] == "1" and saved["run.backbone"] == '"tiny"'
    assert saved["inputs.reward_model"] == ckpt.input_id(rm) and saved["inputs.policy_init"] == ckpt.input_id(pol)
    assert saved["inputs.prompts"] == ckpt.input_id(prompts)
    assert saved["grlo.actor.lr"] == json.dumps(cfg["grlo"]["actor"]["lr"])
    assert not any(k.split(".")[1] in ckpt.RESUMABLE_KEYS for k in saved if k.startswith("grlo."))
