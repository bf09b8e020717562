"""The verl override mapping's rules without verl (grlo/train/verl/overrides.py): value formatting and comparison,
config look-ups and refusals, and the paper config's overrides = train.sh's 46 at train.sh's values except the
declared deviations, then verl defaults only where the config changes them, then the added keys. (Composition with
verl's own Hydra config: tests/verl_env/test_verl_config.py.)"""

import copy
import os

import pytest

from grlo import config as C
from grlo.errors import GrloError
from grlo.train.verl import overrides as O

PAPER = C.REPO_ROOT / "config" / "config.yaml"


@pytest.mark.parametrize("value,text", [
    (None, "null"), (True, "True"), (False, "False"), (1e-6, "1e-06"), (0.5, "0.5"), (3, "3"), ("vllm", "vllm"),
    (["console", "file"], '["console","file"]'), ((0.9, 0.999), "[0.9,0.999]"),
    ({"rm": 1.0, "length": 0.0, "on": True}, "{rm:1.0,length:0.0,on:True}"), ({}, "{}"), ([], "[]")])
def test_fmt(value, text):
    assert O.fmt(value) == text


@pytest.mark.parametrize("text,value", [
    ("True", True), ("true", True), (" 'False' ", False), ("false", False), ("null", None), ("None", None),
    ("1e-6", 1e-6), ("1e-06", 1e-6), ("1024", 1024), ("1024.0", 1024.0), ("2E3", 2000.0), ("-1", -1),
    ('["console"]', ["console"]), ("[not json", "[not json"), ('"vllm"', "vllm"), ("auto", "auto")])
def test_normalise(text, value):
    got = O.normalise(text)
    assert got == value and type(got) is type(value)


def test_same_compares_numbers_by_value_and_the_rest_exactly():
    assert O.same(1e-6, 1e-06) and O.same(1024, 1024.0) and O.same(0.1 + 0.2, 0.3)
    assert not O.same(1e-6, 1.1e-6) and not O.same(1, 2)
    assert O.same(True, True) and not O.same(True, False) and not O.same(False, 1e-12)  # booleans compare as ==
    assert O.same("a", "a") and not O.same("a", "b") and O.same([1, 2], [1, 2]) and O.same(None, None)


def test_get_and_verl_section():
    g = {"a": {"b": {"c": 3}}, "x": 1}
    assert O.get(g, "a.b.c") == 3 and O.get(g, "x") == 1
    assert O.get(g, "a.z", None) is None and O.get(g, "x.y", 7) == 7
    with pytest.raises(GrloError, match=r"^grlo\.a\.b\.z: missing key$"):
        O.get(g, "a.b.z")
    assert O.verl_section({}) == {} and O.verl_section({"verl": None}) == {}
    assert O.verl_section({"verl": {"save_freq": 5}}) == {"save_freq": 5}
    with pytest.raises(GrloError, match=r"^grlo\.verl: must be a mapping$"):
        O.verl_section({"verl": [1]})


@pytest.fixture(scope="module")
def paper_g():
    return C.load([PAPER])["grlo"]


def test_settings_verl_cannot_express_name_the_file_and_field(paper_g):
    O.check_supported(paper_g)
    cases = [({"norm_adv": False}, "grlo.norm_adv", "always whitens"),
             ({"loss_agg_normalization": "mini-batch-tokens"}, "grlo.loss_agg_normalization",
              "'mini-batch-tokens': verl 0.6.1's legacy workers"),
             ({"critic": {"init": "fresh"}}, "grlo.critic.init", "critic.init 'fresh'"),
             ({"rollout": {"engine": "tgi"}}, "grlo.rollout.engine", "rollout engine 'tgi': the verl engine on GPU rolls out with vllm")]
    for change, field, text in cases:
        g = C.deep_merge(copy.deepcopy(paper_g), change)
        with pytest.raises(GrloError) as e:
            O.check_supported(g, "my.yaml")
        assert str(e.value).startswith(f"my.yaml: {field}: ") and text in str(e.value), str(e.value)
    O.check_supported(C.deep_merge(copy.deepcopy(paper_g), {"rollout": {"engine": "vllm"}}))
    for engine in ("sglang", "hf"):  # on GPU only train.sh's vllm; a CPU run replaces the rollout itself
        with pytest.raises(GrloError):
            O.check_supported(C.deep_merge(copy.deepcopy(paper_g), {"rollout": {"engine": engine}}))
        O.check_supported(C.deep_merge(copy.deepcopy(paper_g), {"rollout": {"engine": engine}}), cpu=True)


def _paths(tmp_path):
    return O.Paths(train_file=str(tmp_path / "t.parquet"), val_file="v.parquet", policy_init=str(tmp_path / "pol"),
                   reward_model=str(tmp_path / "rm"), checkpoints=str(tmp_path / "ck"), reward_log="r.jsonl")


def test_paper_overrides_are_train_sh_plus_declared_deviations(paper_g, tmp_path):
    g = copy.deepcopy(paper_g)
    paths = _paths(tmp_path)
    assert paths.val_file == os.path.abspath("v.parquet") and paths.plugin.endswith("grlo/train/verl/plugin.py")
    batch = {"train_batch_size": 1000, "actor_mini": 250, "critic_mini": 250}
    ovr = O.build_overrides(g, "qwen3-4b-base", paths, batch, 7)
    n = len(O.TRAIN_SH)
    assert [o.key for o in ovr[:n]] == [k for k, _ in O.TRAIN_SH]
    for o, (key, sh) in zip(ovr[:n], O.TRAIN_SH):
        if o.deviation is None:
            assert O.same(O.normalise(o.value), O.normalise(sh)), (key, o.value, sh)
        else:
            assert o.deviation == O.DEVIATION_REASONS[key], key
    by_key = {o.key: o for o in ovr}
    assert by_key["data.train_batch_size"].value == "1000" and by_key["data.train_batch_size"].deviation
    assert by_key["actor_rollout_ref.actor.ppo_mini_batch_size"].value == "250"
    assert by_key["actor_rollout_ref.model.path"].value == by_key["critic.model.path"].value == paths.policy_init
    assert by_key["reward_model.model.path"].value == paths.reward_model
    assert by_key["data.train_files"].value == paths.train_file
    assert by_key["trainer.logger"].value.startswith('["console","file"')
    assert by_key["trainer.project_name"].value == (g.get("project_name") or "grlo")
    assert by_key["trainer.experiment_name"].value == (g.get("experiment_name") or "qwen3-4b-base-grlo")
    assert "critic.ppo_mini_batch_size" not in by_key  # same as the actor's: verl's default
    added = {o.key: o.value for o in ovr[-13:]}
    assert added == {"trainer.default_local_dir": paths.checkpoints,
                     "trainer.resume_mode": str(O.verl_section(g).get("resume_mode", "auto")),
                     "trainer.max_actor_ckpt_to_keep": str(int(g.get("keep_last", 1))),
                     "trainer.max_critic_ckpt_to_keep": str(int(g.get("keep_last", 1))),
                     "data.seed": "7", "data.sampler.class_path": "pkg://grlo.train.verl.sampler",
                     "data.sampler.class_name": "EpochSampler", "data.dataloader_num_workers": "0",
                     "custom_reward_function.path": paths.plugin,
                     "custom_reward_function.name": "rule_score",
                     "+reward_model.reward_kwargs.weights": O.fmt(O.style_weights(g)),
                     "+reward_model.reward_kwargs.max_response_length": str(int(g["max_response_length"])),
                     "+reward_model.reward_kwargs.log_path": paths.reward_log}
    assert all(o.deviation == O.DEVIATION_REASONS[o.key] for o in ovr[-13:])
    # verl defaults in between only where the paper config changes them, each with its reason
    for o in ovr[n:-13]:
        ck, default = O.VERL_DEFAULTS[o.key]
        assert not O.same(O.normalise(o.value), O.normalise(O.fmt(default)))
        assert o.deviation == f"set in config (grlo.{ck} = {o.value}); train.sh leaves verl's default {O.fmt(default)}"


def test_a_config_change_becomes_a_named_deviation(paper_g, tmp_path):
    g = C.deep_merge(copy.deepcopy(paper_g), {"actor": {"lr": 2e-6, "weight_decay": 0.0}, "gamma": 0.99,
                                              "logger": ["console", "tensorboard"], "keep_last": 3,
                                              "verl": {"save_freq": 5, "resume_mode": "disable"},
                                              "project_name": "p", "experiment_name": "e"})
    batch = {"train_batch_size": 1024, "actor_mini": 256, "critic_mini": 128}
    ovr = {o.key: o for o in O.build_overrides(g, "b", _paths(tmp_path), batch, 0)}
    lr = ovr["actor_rollout_ref.actor.optim.lr"]
    assert lr.value == "2e-06" and lr.deviation == "set in config (grlo.actor.lr = 2e-06); train.sh: 1e-6"
    assert ovr["data.train_batch_size"].deviation is None  # 1024 = train.sh's
    assert ovr["algorithm.gamma"].value == "0.99"
    assert ovr["actor_rollout_ref.actor.optim.weight_decay"].deviation == \
        "set in config (grlo.actor.weight_decay = 0.0); train.sh leaves verl's default 0.01"
    assert "algorithm.lam" not in ovr  # unchanged verl default: not passed
    crit = ovr["critic.ppo_mini_batch_size"]
    assert crit.value == "128" and "actor's 256" in crit.deviation
    assert ovr["trainer.logger"].value == '["console","file","tensorboard"]'
    assert ovr["trainer.save_freq"].value == "5" and ovr["trainer.resume_mode"].value == "disable"
    assert ovr["trainer.max_actor_ckpt_to_keep"].value == ovr["trainer.max_critic_ckpt_to_keep"].value == "3"
    assert ovr["trainer.project_name"].value == "p" and ovr["trainer.experiment_name"].value == "e"
    g2 = C.deep_merge(copy.deepcopy(paper_g), {"actor": {"clip_ratio": None}})
    assert "actor_rollout_ref.actor.clip_ratio" not in {o.key for o in O.build_overrides(
        g2, "b", _paths(tmp_path), batch, 0)}  # unset clip ratio: verl's default stands


def test_command_and_render():
    ovr = [O.Override("a.b", "1"), O.Override("c", "x y", "because"), O.Override("d", "[1,2]", "why")]
    assert ovr[1].arg() == "c=x y"
    cmd = O.main_ppo_command(ovr, python="py")
    assert cmd == ["py", "-m", "verl.trainer.main_ppo", "a.b=1", "c=x y", "d=[1,2]"]
    assert O.main_ppo_command([])[0] == "python3"
    assert O.render(cmd, ovr) == ("py \\\n    -m \\\n    verl.trainer.main_ppo \\\n    a.b=1 \\\n    'c=x y' \\\n"
                                  "    'd=[1,2]'\n# deviation: c: because\n# deviation: d: why")


def test_refusals_name_the_config_source_and_the_save_cadence_falls_back(paper_g, tmp_path):
    batch = {"train_batch_size": 1024, "actor_mini": 256, "critic_mini": 256}
    bad = C.deep_merge(copy.deepcopy(paper_g), {"norm_adv": False})
    with pytest.raises(GrloError, match=r"^config: grlo\.norm_adv: "):
        O.build_overrides(bad, "b", _paths(tmp_path), batch, 0)
    with pytest.raises(GrloError, match=r"^run\.yaml: grlo\.norm_adv: "):
        O.build_overrides(bad, "b", _paths(tmp_path), batch, 0, "run.yaml")
    g = copy.deepcopy(paper_g)
    g.pop("verl", None)
    g["save_freq"], g["logger"] = 9, ["file", "wandb", "console"]
    ovr = {o.key: o.value for o in O.build_overrides(g, "b", _paths(tmp_path), batch, 0)}
    assert ovr["trainer.save_freq"] == "9"  # no grlo.verl.save_freq: the native engine's cadence
    assert ovr["trainer.logger"] == '["console","file","wandb"]'  # console and file once each
    del g["save_freq"]
    assert {o.key: o.value for o in O.build_overrides(g, "b", _paths(tmp_path), batch, 0)}["trainer.save_freq"] == "-1"


def test_a_config_without_a_mirrored_key_passes_train_sh_value(paper_g, tmp_path):
    g = copy.deepcopy(paper_g)
    del g["return_raw_chat"]
    batch = {"train_batch_size": 1024, "actor_mini": 256, "critic_mini": 256}
    ovr = {o.key: o for o in O.build_overrides(g, "b", _paths(tmp_path), batch, 0)}
    assert ovr["data.return_raw_chat"].value == "True" and ovr["data.return_raw_chat"].deviation is None
