"""The verl override mapping's rules that mutation testing found unchecked (grlo/train/verl/overrides.py): what a
config that omits a key gets (each default), the refusals' exact messages with the file and field they name, the
style_mix weights that reach the reward manager, a null set in the config, and the value comparison's edges."""

import copy

import pytest

from grlo import config as C
from grlo.errors import GrloError
from grlo.rewards.style import StyleMix
from grlo.train.verl import overrides as O

PAPER = C.REPO_ROOT / "config" / "config.yaml"
BATCH = {"train_batch_size": 1024, "actor_mini": 256, "critic_mini": 256}


@pytest.fixture(scope="module")
def paper_g():
    return C.load([PAPER])["grlo"]


def _build(g, tmp_path, **kw):
    paths = O.Paths(train_file=str(tmp_path / "t.parquet"), val_file=str(tmp_path / "v.parquet"),
                    policy_init=str(tmp_path / "pol"), reward_model=str(tmp_path / "rm"),
                    checkpoints=str(tmp_path / "ck"), reward_log=str(tmp_path / "r.jsonl"))
    return {o.key: o for o in O.build_overrides(g, "b", paths, BATCH, 0, **kw)}


def test_check_supported_accepts_a_config_that_omits_the_checked_keys():
    # norm_adv, loss_agg_normalization and critic.init default to what verl does: nothing to refuse
    O.check_supported({"rollout": {"engine": "vllm"}})
    O.check_supported({"rollout": {"engine": "vllm"}, "critic": {"lr": 1e-5}})


@pytest.mark.parametrize("change,message", [
    ({"norm_adv": False},
     "grlo.norm_adv: verl's GAE always whitens advantages: set grlo.norm_adv: true or grlo.engine: native"),
    ({"loss_agg_normalization": "mini-batch-tokens"},
     "grlo.loss_agg_normalization: loss_agg_normalization 'mini-batch-tokens': verl 0.6.1's legacy workers (train.sh) "
     "average per-micro-batch token means; set grlo.loss_agg_normalization: micro-batch-mean or grlo.engine: native"),
    ({"critic": {"init": "fresh"}},
     "grlo.critic.init: critic.init 'fresh': verl's critic starts from the actor's checkpoint (train.sh); set "
     "grlo.critic.init: policy_init"),
    ({"rollout": {"engine": "tgi"}},
     "grlo.rollout.engine: rollout engine 'tgi': the verl engine on GPU rolls out with vllm (train.sh); set "
     "grlo.rollout.engine: vllm (CPU runs use HF generate by themselves)"),
])
def test_refusal_messages_are_exact_and_name_the_source(change, message):
    g = C.deep_merge({"rollout": {"engine": "vllm"}}, change)
    with pytest.raises(GrloError) as e:
        O.check_supported(g)
    assert str(e.value) == "config: " + message  # no source given: "config"
    with pytest.raises(GrloError) as e:
        O.check_supported(g, "run.yaml")
    assert str(e.value) == "run.yaml: " + message


def test_a_config_without_keep_last_resume_mode_or_a_verl_default_gets_the_defaults(paper_g, tmp_path):
    g = copy.deepcopy(paper_g)
    del g["keep_last"], g["verl"]["resume_mode"], g["gamma"]
    ovr = _build(g, tmp_path)
    assert ovr["trainer.max_actor_ckpt_to_keep"].value == ovr["trainer.max_critic_ckpt_to_keep"].value == "1"
    assert ovr["trainer.resume_mode"].value == "auto"
    assert "algorithm.gamma" not in ovr  # verl's default stands, not passed


def test_a_null_verl_default_is_passed_and_reported_and_an_unset_clip_ratio_skips_only_itself(paper_g, tmp_path):
    g = C.deep_merge(copy.deepcopy(paper_g), {"gamma": None, "actor": {"clip_ratio": None},
                                              "rollout": {"temperature": 0.6}})
    ovr = _build(g, tmp_path)
    assert ovr["algorithm.gamma"].value == "null"
    assert ovr["algorithm.gamma"].deviation == "set in config (grlo.gamma = null); train.sh leaves verl's default 1.0"
    assert "actor_rollout_ref.actor.clip_ratio" not in ovr  # null clip ratio: verl's default
    # the keys after clip_ratio are still compared
    t = ovr["actor_rollout_ref.rollout.temperature"]
    assert t.value == "0.6" and t.deviation == ("set in config (grlo.rollout.temperature = 0.6); train.sh leaves "
                                                "verl's default 1.0")


def test_style_mix_weights_reach_the_reward_manager(paper_g, tmp_path):
    w = {"rm": 2.0, "truncated": -0.5, "repetition": -0.25, "length": 0.125}
    g = C.deep_merge(copy.deepcopy(paper_g), {"reward": {"style_mix": {"weights": w}}})
    assert O.style_weights(g) == w
    ovr = _build(g, tmp_path)
    assert ovr["+reward_model.reward_kwargs.weights"].value == "{rm:2.0,truncated:-0.5,repetition:-0.25,length:0.125}"
    # the reward manager builds its StyleMix from these keys (grlo/train/verl/reward_manager.py)
    s = StyleMix.from_config({"weights": O.style_weights(g)}, 100)
    assert (s.w_rm, s.w_truncated, s.w_repetition, s.w_length) == (2.0, -0.5, -0.25, 0.125)
    g = copy.deepcopy(paper_g)
    del g["reward"]["style_mix"]  # no style_mix section: StyleMix's defaults
    assert O.style_weights(g) == {"rm": 1.0, "truncated": -1.0, "repetition": -1.0, "length": 0.0}


def test_same_and_normalise_edges():
    assert not O.same(1.0, 1.0 + 1e-10)  # 1e-12 relative: a changed lr in its 10th digit is still a deviation
    assert O.same(1.0, 1.0 + 1e-13)
    # a number against a non-number: unequal, never a float() of a string
    assert not O.same("high", 0.7) and not O.same(1, "1") and not O.same(1024, None)
    assert O.normalise("X") == "X" and O.normalise("'MAX'") == "MAX"  # only quotes are stripped


def test_replace_puts_each_new_override_in_the_place_of_its_key_plus_or_not_and_appends_the_rest():
    out = [O.Override("a", "1"), O.Override("+b", "2"), O.Override("c", "3")]
    got = O.replace(out, [O.Override("b", "9", "why b"), O.Override("+a", "7"), O.Override("d", "4")])
    assert [(o.key, o.value, o.deviation) for o in got] == [("+a", "7", None), ("b", "9", "why b"), ("c", "3", None),
                                                           ("d", "4", None)]
    assert [o.key for o in out] == ["a", "+b", "c"]  # the input list is left as it was


def test_a_cpu_run_gets_every_cpu_override_once_in_place_and_accepts_the_hf_rollout(paper_g, tmp_path):
    from grlo.train.verl import cpu as CPU

    g = C.deep_merge(copy.deepcopy(paper_g), {"rollout": {"engine": "hf"}})
    with pytest.raises(GrloError, match="grlo.rollout.engine"):
        _build(g, tmp_path)  # on GPU only vLLM
    paths = O.Paths(train_file=str(tmp_path / "t.parquet"), val_file=str(tmp_path / "v.parquet"),
                    policy_init=str(tmp_path / "pol"), reward_model=str(tmp_path / "rm"),
                    checkpoints=str(tmp_path / "ck"), reward_log=str(tmp_path / "r.jsonl"))
    gpu = O.build_overrides(paper_g, "b", paths, BATCH, 0)
    cpu = O.build_overrides(g, "b", paths, BATCH, 0, cpu=True)
    keys = [o.key.lstrip("+") for o in cpu]
    assert len(keys) == len(set(keys))  # each key once
    want = CPU.overrides()
    by_key = {o.key: o for o in cpu}
    for key, value, why in want:
        assert (by_key[key].value, by_key[key].deviation) == (value, why), key
    # a key the GPU run already passes keeps its place; the others follow, in the CPU module's order
    gpu_keys = [o.key.lstrip("+") for o in gpu]
    for key, _, _ in want:
        if key.lstrip("+") in gpu_keys:
            assert keys.index(key.lstrip("+")) == gpu_keys.index(key.lstrip("+")), key
    new = [k.lstrip("+") for k, _, _ in want if k.lstrip("+") not in gpu_keys]
    assert new and keys[-len(new):] == new
    assert by_key["actor_rollout_ref.rollout.name"].value == CPU.ROLLOUT  # replaced, not train.sh's vllm
    # everything else is the GPU run's
    cpu_keys = {k.lstrip("+") for k, _, _ in want}
    assert [o for o in cpu if o.key.lstrip("+") not in cpu_keys] == [o for o in gpu if o.key.lstrip("+") not in cpu_keys]


def test_data_files_are_the_given_paths_and_env_reaches_rays_runtime_env(paper_g, tmp_path):
    ovr = _build(paper_g, tmp_path, env={"VERL_FILE_LOGGER_PATH": "/x/m.jsonl", "GRLO_SEED": 3})
    assert ovr["data.train_files"].value == str(tmp_path / "t.parquet")
    assert ovr["data.val_files"].value == str(tmp_path / "v.parquet")
    for k, v in (("VERL_FILE_LOGGER_PATH", "'/x/m.jsonl'"), ("GRLO_SEED", "'3'")):  # quoted: strings for Ray
        o = ovr[f"+ray_kwargs.ray_init.runtime_env.env_vars.{k}"]
        assert (o.value, o.deviation) == (v, O.DEVIATION_REASONS["env"])
    assert not any(k.startswith("+ray_kwargs.ray_init.runtime_env.env_vars.") for k in _build(paper_g, tmp_path))


def test_a_train_sh_value_verl_ignores_is_declared_even_when_the_config_keeps_it(paper_g, tmp_path):
    declared = {k: why for k, why in O.DEVIATION_REASONS.items() if why.startswith("declared only")}
    assert declared  # reward_model.model.fsdp_config.param_offload, at least
    ovr = _build(paper_g, tmp_path)
    for key, why in declared.items():
        assert ovr[key].value == dict(O.TRAIN_SH)[key], key  # train.sh's value
        assert ovr[key].deviation == why, key
    # a train.sh value the config keeps and verl honours has no deviation line
    assert ovr["algorithm.adv_estimator"].deviation is None
