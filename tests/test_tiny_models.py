"""Tiny offline models: deterministic from a seed, saved/reloaded as HF dirs, policy and RM tokenizers differ."""

import pytest
import torch

from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model, build_tokenizer


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_policy(root / "policy", seed=0), build_tiny_reward_model(root / "rm", seed=0)


def test_tokenizer_deterministic_and_padded_left():
    a, b = build_tokenizer(3, 320, "policy"), build_tokenizer(3, 320, "policy")
    assert a.get_vocab() == b.get_vocab()
    assert a.pad_token_id != a.eos_token_id and a.padding_side == "left"
    text = "explain the system design: 1. cost, 2. risk!"
    assert a.decode(a(text)["input_ids"]) == text  # byte-level BPE round trip


def test_saved_tokenizers_keep_left_padding_and_templates(tiny_dirs):
    from transformers import AutoTokenizer

    pol, rm = (AutoTokenizer.from_pretrained(d) for d in tiny_dirs)
    assert pol.padding_side == "left" and rm.padding_side == "left"
    chat = [{"role": "user", "content": "plan a garden"}]
    p_text = pol.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    r_text = rm.apply_chat_template(chat + [{"role": "assistant", "content": "ok"}], tokenize=False)
    assert p_text == "<|im_start|>user\nplan a garden<|im_end|>\n<|im_start|>assistant\n"
    assert r_text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nplan a garden<|eot_id|>")
    # different vocabularies: the same text gets different ids, so policy ids cannot be fed to the RM
    assert pol("plan a garden")["input_ids"] != rm("plan a garden")["input_ids"]
    assert len(pol) != len(rm)


def test_models_load_generate_and_score(tiny_dirs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    pol_dir, rm_dir = tiny_dirs
    lm = AutoModelForCausalLM.from_pretrained(pol_dir)
    tok = AutoTokenizer.from_pretrained(pol_dir)
    ids = tok(["plan a garden", "a"], return_tensors="pt", padding=True)
    out = lm.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[0] == 2 and ids["input_ids"].shape[1] < out.shape[1] <= ids["input_ids"].shape[1] + 5
    rm = AutoModelForSequenceClassification.from_pretrained(rm_dir)
    assert rm.config.num_labels == 1
    # same seed -> bit-identical weights (the smoke RM is reproducible anywhere)
    again = build_tiny_reward_model(tmp_path / "rm2", seed=0)
    rm2 = AutoModelForSequenceClassification.from_pretrained(again)
    for (k, v), (_, w) in zip(rm.state_dict().items(), rm2.state_dict().items()):
        assert torch.equal(v, w), k
