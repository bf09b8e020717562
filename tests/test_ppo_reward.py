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
