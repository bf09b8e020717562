"""`style_mix` inside verl 0.6.1: loaded by verl's own `load_reward_manager` from the config our command composes to,
called on a real `DataProto` batch carrying `rm_scores`, it gives exactly what grlo.rewards.style computes."""

import json
from pathlib import Path

import pytest
import torch

from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

from verl import DataProto  # noqa: E402
from verl.trainer.ppo.reward import load_reward_manager  # noqa: E402

from grlo.models.tiny import build_tiny_policy  # noqa: E402
from grlo.rewards.style import StyleMix  # noqa: E402
from grlo.train.verl import overrides as O  # noqa: E402

WEIGHTS = {"rm": 1.0, "truncated": -1.0, "repetition": -0.5, "length": 0.25}
R = 12  # response length of the batch (max_response_length)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(build_tiny_policy(tmp_path_factory.mktemp("pol") / "p", seed=3))


@pytest.fixture(scope="module")
def verl_config(tmp_path_factory):
    """verl's composed config for our overrides (the paper config's command) with test weights and log path."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import verl

    from grlo import config as C

    g = C.load([str(Path(__file__).resolve().parents[2] / "config" / "config.yaml")])["grlo"]
    g["reward"]["style_mix"] = {"weights": WEIGHTS}
    g["max_response_length"] = R
    log = tmp_path_factory.mktemp("log") / "attempt-1.reward.jsonl"
    paths = O.Paths("t.parquet", "v.parquet", "m", "rm", "ck", str(log))
    ovr = O.build_overrides(g, "b", paths, {"train_batch_size": 512, "actor_mini": 128, "critic_mini": 128}, 0)
    GlobalHydra.instance().clear()
    cfg_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=cfg_dir, version_base=None):
        return compose("ppo_trainer", overrides=[o.arg() for o in ovr]), log


def rm_scores_as_verl(attention_mask, position_ids, scores, response_length):
    """verl 0.6.1 RewardModelWorker._expand_to_token_level: the score at the last attended position, response part."""
    idx = torch.argmax(position_ids * attention_mask, dim=-1)
    out = torch.zeros_like(attention_mask, dtype=scores.dtype)
    out[torch.arange(len(scores)), idx] = scores
    return out[:, -response_length:]


def make_batch(tok, responses: list[list[int]], scores: list[float], width: int = R) -> DataProto:
    pad = tok.pad_token_id
    prompts = [tok("hello there")["input_ids"], tok("a longer prompt with words")["input_ids"]] * 2
    P = max(len(p) for p in prompts)
    p_ids = torch.tensor([[pad] * (P - len(p)) + p for p in prompts])
    p_mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p in prompts])
    r_ids = torch.tensor([r + [pad] * (width - len(r)) for r in responses])
    r_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in responses])
    attn = torch.cat([p_mask, r_mask], 1)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    batch = {"prompts": p_ids, "responses": r_ids, "input_ids": torch.cat([p_ids, r_ids], 1), "attention_mask": attn,
             "position_ids": pos, "response_mask": r_mask,
             "rm_scores": rm_scores_as_verl(attn, pos, torch.tensor(scores), width)}
    n = len(responses)
    non_tensor = {"data_source": ["grlo"] * n, "reward_model": [{"style": "model", "ground_truth": ""}] * n}
    import numpy as np

    return DataProto.from_dict(tensors=batch, non_tensors={k: np.array(v, dtype=object) for k, v in non_tensor.items()})


def test_style_mix_in_verl_equals_grlo_rewards_style(tok, verl_config):
    cfg, log = verl_config
    manager = load_reward_manager(cfg, tok, num_examine=0, **cfg.reward_model.get("reward_kwargs", {}))
    assert type(manager).__name__ == "StyleMixRewardManager"

    eos = tok.eos_token_id
    words = tok("a b c d a b c d a b")["input_ids"][: R - 1]
    responses = [
        tok("fine answer")["input_ids"] + [eos],  # ends with EOS
        (tok("no end here and more words keep going on")["input_ids"] * R)[:R],  # truncated at R, no EOS
        words + [eos],  # repeated 4-grams
        [eos],  # empty answer
    ]
    rm = [0.5, -1.25, 2.0, 0.125]
    data = make_batch(tok, responses, rm)
    out = manager(data, return_dict=True)

    texts = [tok.decode(r, skip_special_tokens=True) for r in responses]
    truncated = [r[-1] != eos for r in responses]
    want, parts = StyleMix.from_config({"weights": WEIGHTS}, R)(rm, texts, [len(r) for r in responses], truncated)
    got = out["reward_tensor"]
    assert got.shape == (4, R)
    for i, r in enumerate(responses):
        assert got[i, len(r) - 1].item() == pytest.approx(want[i], abs=1e-6)
        assert got[i].abs().sum().item() == pytest.approx(abs(want[i]), abs=1e-6)  # nothing elsewhere
    assert parts["truncated"] == [0.0, 1.0, 0.0, 0.0] and parts["repetition"][2] > 0
    for k, v in parts.items():
        assert out["reward_extra_info"][f"style_{k}"] == pytest.approx(v)
    row = json.loads(log.read_text().splitlines()[-1])
    assert row["split"] == "train" and row["reward/score_mean"] == pytest.approx(sum(want) / 4)
    assert row["reward/repetition_mean"] == pytest.approx(sum(parts["repetition"]) / 4)


def test_validation_rows_get_verls_rule_score_and_model_rows_need_rm_scores(tok, verl_config):
    from verl.utils.reward_score import default_compute_score

    cfg, log = verl_config
    manager = load_reward_manager(cfg, tok, num_examine=1, **cfg.reward_model.get("reward_kwargs", {}))
    answers = ["\\boxed{3}", "\\boxed{4}", "no box", "\\boxed{\\frac{1}{2}}"]
    responses = [tok(a)["input_ids"] + [tok.eos_token_id] for a in answers]
    data = make_batch(tok, responses, [0.0] * 4, width=max(len(r) for r in responses))
    data.batch.pop("rm_scores")  # verl 0.6.1 validates without the reward model
    import numpy as np

    gts = ["3", "5", "1", "\\frac{1}{2}"]
    data.non_tensor_batch["reward_model"] = np.array([{"style": "rule", "ground_truth": g} for g in gts], dtype=object)
    data.non_tensor_batch["data_source"] = np.array(["HuggingFaceH4/MATH-500"] * 4, dtype=object)
    out = manager(data, return_dict=True)["reward_tensor"]
    texts = [tok.decode(r, skip_special_tokens=True) for r in responses]
    want = [float(default_compute_score("HuggingFaceH4/MATH-500", t, g)) for t, g in zip(texts, gts)]
    assert want[0] == 1.0 and want[1] == 0.0  # the tiny tokenizer round-trips the boxed answers
    assert [out[i, len(r) - 1].item() for i, r in enumerate(responses)] == want
    assert json.loads(log.read_text().splitlines()[-1])["split"] == "val"
    data.non_tensor_batch["reward_model"] = np.array([{"style": "model", "ground_truth": ""}] * 4, dtype=object)
    with pytest.raises(RuntimeError, match="rm_scores"):
        manager(data)


def test_the_per_sample_function_scores_rules_and_refuses_model_rows(verl_config):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    fn = get_custom_reward_fn(verl_config[0])
    assert fn(data_source="HuggingFaceH4/MATH-500", solution_str="so \\boxed{7}", ground_truth="7") == 1.0
    with pytest.raises(RuntimeError, match="style_mix"):
        fn(data_source="lighteval/MATH", solution_str="x", ground_truth="", extra_info={})
