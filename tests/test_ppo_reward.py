"""Cross-tokenizer RM scoring and style_mix."""

import pytest
import torch

from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
from grlo.rewards.reward_model import RewardScorer, rm_text
from grlo.rewards.style import StyleMix, repetition_fraction


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinyrm")
    return build_tiny_policy(root / "policy", seed=1), build_tiny_reward_model(root / "rm", seed=1)


def test_cross_tokenizer_reward_equals_direct_rm_scoring(dirs):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    pol_dir, rm_dir = dirs
    pol_tok = AutoTokenizer.from_pretrained(pol_dir)
    chats = [[{"role": "user", "content": "plan a garden for a school"}],
             [{"role": "user", "content": "explain"}],
             [{"role": "system", "content": "be brief"}, {"role": "user", "content": "compare two energy methods"}]]
    answers = ["1. water the plants\n2. measure light", "ok", "solar is stable; wind is often cheaper"]
    # the policy's response ids, decoded back to text exactly as the trainer does
    resp_ids = [pol_tok(a, add_special_tokens=False)["input_ids"] + [pol_tok.eos_token_id] for a in answers]
    texts = [pol_tok.decode(r, skip_special_tokens=True) for r in resp_ids]
    assert texts == answers
    scorer = RewardScorer(str(rm_dir), batch_size=2)  # 2 < 3: padding inside a batch and a second batch
    got = scorer.score(chats, texts)

    rm_tok = AutoTokenizer.from_pretrained(rm_dir)
    rm = AutoModelForSequenceClassification.from_pretrained(rm_dir).eval()
    for chat, ans, g in zip(chats, answers, got):
        text = rm_tok.apply_chat_template(chat + [{"role": "assistant", "content": ans}], tokenize=False)
        ids = rm_tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        assert ids[0, 0].item() == rm_tok.bos_token_id and (ids == rm_tok.bos_token_id).sum() == 1  # one BOS
        with torch.no_grad():
            direct = rm(input_ids=ids).logits[0, 0].item()
        assert g == pytest.approx(direct, abs=1e-5)
    assert len(set(round(x, 6) for x in got)) == 3  # the scores depend on the text


def test_rm_text_uses_rm_template(dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(dirs[1])
    t = rm_text(tok, [{"role": "user", "content": "q"}], "a")
    assert t == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\na<|eot_id|>")


def test_rm_max_length_truncates(dirs):
    scorer = RewardScorer(str(dirs[1]), max_length=8)
    ids = scorer.encode([[{"role": "user", "content": "a long question about water systems"}]], ["a long answer"])
    assert len(ids[0]) == 8


def test_style_mix_components_and_weights():
    sm = StyleMix.from_config({"weights": {"rm": 2.0, "truncated": -1.0, "repetition": -0.5, "length": 0.25}}, 10)
    total, parts = sm([0.5, -1.0], ["a b c d a b c d", "short"], [10, 5], [True, False])
    assert parts["truncated"] == [1.0, 0.0]
    assert parts["length"] == [1.0, 0.5]
    rep = repetition_fraction("a b c d a b c d")  # 5 four-grams, 4 distinct
    assert rep == pytest.approx(1 - 4 / 5)
    assert total[0] == pytest.approx(2 * 0.5 - 1.0 - 0.5 * rep + 0.25)
    assert total[1] == pytest.approx(-2.0 + 0.125)


def test_style_mix_pure_rm_and_unknown_weight():
    from grlo.errors import GrloError

    pure = StyleMix.from_config({"weights": {"rm": 1.0, "truncated": 0, "repetition": 0, "length": 0}}, 32)
    total, _ = pure([0.3, -2.0], ["x x x x x x", "y"], [32, 1], [True, False])
    assert total == [0.3, -2.0]
    with pytest.raises(GrloError, match="unknown style_mix weight"):
        StyleMix.from_config({"weights": {"politeness": 1.0}}, 32)


def test_rm_input_is_verl_legacy_switch_chat_template(dirs):
    """verl 0.6.1 `_switch_chat_template`: response decoded with special tokens, only the policy's EOS string removed;
    RM template with add_generation_prompt=False; exactly one BOS (the template's); cut on the right at max_length."""
    from transformers import AutoTokenizer

    from grlo.rewards.reward_model import rm_response_text

    pol_dir, rm_dir = dirs
    pol_tok, rm_tok = AutoTokenizer.from_pretrained(pol_dir), AutoTokenizer.from_pretrained(rm_dir)
    assert pol_tok.bos_token is None and pol_tok.eos_token == "<|im_end|>"  # Qwen-shaped policy tokenizer
    assert rm_tok.bos_token == "<|begin_of_text|>" and rm_tok.eos_token == "<|eot_id|>"  # Llama-3.1-shaped RM
    special = pol_tok.convert_tokens_to_ids("<|im_start|>")
    ids = pol_tok("water the plants", add_special_tokens=False)["input_ids"] + [special, pol_tok.eos_token_id]
    text = rm_response_text(pol_tok, ids)
    assert text == "water the plants<|im_start|>"  # a special token other than EOS stays; EOS goes
    assert rm_response_text(pol_tok, ids[:-1]) == text  # a truncated response (no EOS) reads the same

    scorer = RewardScorer(str(rm_dir), max_length=4096)
    chat = [{"role": "user", "content": "plan a garden"}]
    enc = scorer.encode([chat], [text])[0]
    assert enc.count(rm_tok.bos_token_id) == 1 and enc[0] == rm_tok.bos_token_id
    assert rm_tok.decode(enc).endswith("water the plants<|im_start|><|eot_id|>")  # no generation prompt after it
    short = RewardScorer(str(rm_dir), max_length=5).encode([chat], [text])[0]
    assert short == enc[:5]  # right truncation keeps the beginning


def test_trainer_rm_max_length_defaults_to_the_rollout_width():
    """reward.max_length null = verl's fallback, the rollout width (1024 + 3072 = 4096 in the paper config)."""
    from grlo import config as config_mod

    g = config_mod.load([config_mod.REPO_ROOT / "config" / "config.yaml"])["grlo"]
    assert g["reward"]["max_length"] is None
    assert g["max_prompt_length"] + g["max_response_length"] == 4096
