"""The RLVR stages on verl (`rlvr.engine: verl`): the dry-run command composes on verl 0.6.1's own Hydra config with
General-Reasoner's launcher values wherever no deviation is declared, and our reward, loaded by verl's own
`load_reward_manager` from that config and called on a real `DataProto`, gives the General-Reasoner reward that the
TRL engine trains on."""

import contextlib
import io
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from grlo import cli
from grlo.train.verl import overrides as O
from grlo.train.verl import rlvr_overrides as RO
from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

import verl  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAPER = [str(ROOT / "config" / "config.yaml")]


def compose(overrides: list[str]):
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return _compose("ppo_trainer", overrides=overrides)


def dry_run(*extra: str) -> tuple[list[str], dict[str, str]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["train-rlvr", "--config", *PAPER, "--backbone", "qwen3-4b-base", "--stage", "grlo-rlvr",
                       "--dry-run", *extra])
    assert rc == 0
    text = buf.getvalue()
    args = shlex.split(" ".join(ln.rstrip("\\").strip() for ln in text.splitlines() if not ln.startswith("#")))
    devs = dict(ln[len("# deviation: "):].split(": ", 1) for ln in text.splitlines()
                if ln.startswith("# deviation: "))
    return args, devs


def selected(cfg, key):
    v = OmegaConf.select(cfg, key)
    return OmegaConf.to_object(v) if OmegaConf.is_config(v) else v


def test_launcher_table_is_general_reasoners_main_ppo_line():
    keys = [k for k, _ in RO.GR_LAUNCHER]
    assert len(keys) == 52 and len(set(keys)) == 52
    assert dict(RO.GR_LAUNCHER)["algorithm.adv_estimator"] == "grpo"


def test_dry_run_composes_with_every_launcher_setting_at_its_value_or_a_deviation():
    args, devs = dry_run()
    assert args[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    cfg = compose(args[3:])  # raises on any key verl 0.6.1 does not know
    given = dict(a.split("=", 1) for a in args[3:])
    for key, value in RO.GR_LAUNCHER:
        if key in devs:
            continue
        assert key in given, key
        got = selected(cfg, key)
        assert O.same(O.normalise(value), got if not isinstance(got, str) else O.normalise(got)), (key, value, got)
    # the recipe's GRPO settings, as verl sees them
    a = cfg.actor_rollout_ref
    assert cfg.algorithm.adv_estimator == "grpo" and a.rollout.n == 8 and a.actor.optim.lr == 5e-7
    assert a.actor.use_kl_loss and a.actor.kl_loss_coef == 1e-4 and a.actor.kl_loss_type == "low_var_kl"
    assert a.actor.clip_ratio == 0.3 and a.actor.clip_ratio_c == 10 and a.actor.entropy_coeff == 0.001
    assert a.actor.ppo_mini_batch_size == 256 and a.actor.ppo_micro_batch_size_per_gpu == 8
    assert cfg.data.train_batch_size == 1024 and cfg.data.max_response_length == 8192
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"  # verl's default, kept
    # the grlo-rlvr budget: 80 optimizer steps = 20 verl steps of 4 optimizer steps
    assert cfg.trainer.total_training_steps == 20 and cfg.trainer.save_freq == 5
    assert cfg.reward_model.reward_manager == "batch" and not cfg.reward_model.enable
    assert cfg.custom_reward_function.path.endswith("grlo/train/verl/rlvr_reward.py")
    assert cfg.custom_reward_function.reward_kwargs.kind == "general_reasoner"
    # every deviation has its reason; the launcher keys we drop are not on the command line
    assert set(RO.NOT_PASSED) <= set(devs) and not set(RO.NOT_PASSED) & set(given)
    from verl.utils.config import validate_config

    validate_config(cfg, use_reference_policy=True, use_critic=False)


def test_config_changes_show_as_deviations_and_unsupported_choices_fail(tmp_path):
    extra = tmp_path / "x.yaml"
    extra.write_text("rlvr:\n  train:\n    beta: 0.0\n    learning_rate: 1.0e-6\n")
    args, devs = dry_run("--config", *PAPER, str(extra))  # a second --config: merged over the first
    given = dict(a.split("=", 1) for a in args[3:])
    assert given["actor_rollout_ref.actor.use_kl_loss"] == "False" and "actor_rollout_ref.actor.use_kl_loss" in devs
    assert given["actor_rollout_ref.actor.optim.lr"] == "1e-06" and "5e-7" in devs["actor_rollout_ref.actor.optim.lr"]
    extra.write_text("rlvr:\n  train:\n    scale_rewards: batch\n")
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(["train-rlvr", "--config", *PAPER, str(extra), "--backbone", "b", "--stage", "rlvr",
                       "--dry-run"])
    assert rc != 0 and "rlvr.train.scale_rewards" in buf.getvalue() and "Traceback" not in buf.getvalue()


# ------------------------------------------------------------------------------------------ the reward inside verl

@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from grlo.models.tiny import build_tiny_policy

    return str(build_tiny_policy(tmp_path_factory.mktemp("pol") / "p", seed=3))


def test_reward_through_verls_batch_manager_is_the_general_reasoner_reward(tok_dir, tmp_path):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    from grlo.rewards.general_reasoner import shaped_reward

    args, _ = dry_run()
    log = tmp_path / "r.jsonl"
    ours = [a for a in args[3:] if not a.startswith(("+custom_reward_function.reward_kwargs.tokenizer",
                                                      "+custom_reward_function.reward_kwargs.log_path"))]
    cfg = compose(ours + [f"+custom_reward_function.reward_kwargs.tokenizer={tok_dir}",
                          f"+custom_reward_function.reward_kwargs.log_path={log}"])
    tok = AutoTokenizer.from_pretrained(tok_dir)
    manager = load_reward_manager(cfg, tok, num_examine=0)
    texts = ["so the answer is \\boxed{\\frac{1}{2}}", "I think \\boxed{0.5}", "\\boxed{3}", "no idea"]
    golds = ["1/2", "1/2", "1/2", "1/2"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, ids)) + 2
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    prompt = torch.tensor([[5, 6, 7]] * len(texts))
    resp = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
    attn = torch.cat([torch.ones_like(prompt), torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])], 1)
    data = DataProto.from_dict(
        tensors={"prompts": prompt, "responses": resp, "attention_mask": attn},
        non_tensors={"data_source": np.array(["rlvr"] * 4, dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in golds], dtype=object),
                     "extra_info": np.array([{"split": "train", "index": i, "question": "half?"} for i in range(4)],
                                            dtype=object)})
    out = manager(data, return_dict=True)
    n_tok = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    want = [shaped_reward(g, tok.decode(x, skip_special_tokens=True), length_fn=n_tok).reward
            for g, x in zip(golds, ids)]
    assert want[0] == 1.0 - 0.05 * abs(n_tok("1/2") - n_tok("\\frac{1}{2}")) and want[2] == 0.0 and want[3] == -0.5
    got = [float(out["reward_tensor"][i, len(x) - 1]) for i, x in enumerate(ids)]
    assert got == pytest.approx(want)
    assert float(out["reward_tensor"].sum()) == pytest.approx(sum(want))  # one non-zero entry per row
    assert out["reward_extra_info"]["correct"] == [1.0, 1.0, 0.0, 0.0]
    import json

    row = json.loads(log.read_text().splitlines()[-1])
    assert row["split"] == "train" and row["n"] == 4 and row["reward/no_answer_frac"] == 0.25
    assert row["reward/score_mean"] == pytest.approx(sum(want) / 4)
