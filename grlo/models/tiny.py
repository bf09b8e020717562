"""Deterministic tiny models built offline from a seed: tokenizers, a causal LM, a reward model.

The reward model deliberately has its OWN tokenizer (different vocabulary and merges) and its OWN chat template
(Llama-3 style headers) so that every smoke run and test exercises the cross-tokenizer reward path that the paper's
Skywork-Reward-V2-Llama-3.1-8B needs with a Qwen3 policy.
"""

from __future__ import annotations

import random
from pathlib import Path

# Our own small corpus (written for this package): varied English so BPE learns sub-words, plus digits/markup.
_WORDS = (
    "the a an of to and in on for with by from about into over under between after before during without "
    "explain describe compare design write plan build measure improve choose review summarise outline propose "
    "system data model network energy water city garden school health market policy budget team project "
    "method result example reason step detail risk cost benefit question answer guide list table code test "
    "clear simple careful useful practical stable secure efficient reliable modern local global small large "
    "first second third next then finally however therefore because while although also often usually "
    "people students engineers doctors teachers farmers writers builders researchers managers "
    "light sound heat power signal memory storage sensor module protocol interface server client "
    "is are was were be been can could should would will may must do does did have has had make makes made"
).split()
_MARKUP = ["1.", "2.", "3.", "-", "*", "**", "#", "##", ":", ";", ",", ".", "?", "!", "(", ")", "0", "1", "2", "3",
           "4", "5", "6", "7", "8", "9", "%", "=", "+", "\n"]


def corpus(seed: int, n_lines: int = 400) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        n = rng.randint(6, 24)
        toks = [rng.choice(_WORDS) if rng.random() < 0.85 else rng.choice(_MARKUP) for _ in range(n)]
        lines.append(" ".join(toks))
    return lines


POLICY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
REWARD_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def build_tokenizer(seed: int, vocab_size: int, style: str = "policy"):
    """Byte-level BPE trained on the spot, wrapped in PreTrainedTokenizerFast with a chat template, pad != eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # heavy: tokenizers
    from transformers import PreTrainedTokenizerFast  # heavy: transformers

    if style == "policy":
        specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
        kw = dict(eos_token="<|im_end|>", pad_token="<|pad|>", bos_token=None, chat_template=POLICY_CHAT_TEMPLATE)
    elif style == "reward":
        specials = ["<|finetune_pad|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        kw = dict(eos_token="<|eot_id|>", pad_token="<|finetune_pad|>", bos_token="<|begin_of_text|>",
                  chat_template=REWARD_CHAT_TEMPLATE)
    else:
        raise ValueError(f"unknown tokenizer style {style!r}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", **kw)


def _seeded(seed: int):
    import torch  # heavy: torch

    torch.manual_seed(seed)


def build_tiny_policy(out_dir: str | Path, seed: int = 0, vocab_size: int = 384, hidden_size: int = 64,
                      num_layers: int = 2, num_heads: int = 4) -> Path:
    """A random Qwen3 causal LM + its ChatML-style tokenizer, saved as an HF dir."""
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config  # heavy: transformers

    out = Path(out_dir)
    tok = build_tokenizer(seed, vocab_size, "policy")
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                      num_hidden_layers=num_layers, num_attention_heads=num_heads,
                      num_key_value_heads=max(1, num_heads // 2), head_dim=hidden_size // num_heads,
                      max_position_embeddings=2048, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=None)
    _seeded(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_reward_model(out_dir: str | Path, seed: int = 0, vocab_size: int = 384, hidden_size: int = 64,
                            num_layers: int = 2, num_heads: int = 4) -> Path:
    """A random sequence classifier (num_labels=1) with its OWN tokenizer and Llama-3-style chat template."""
    from transformers import AutoModelForSequenceClassification, Qwen3Config  # heavy: transformers

    out = Path(out_dir)
    # a different corpus seed and vocabulary size than the policy: the two tokenizations never coincide
    tok = build_tokenizer(seed + 7919, max(vocab_size - 64, 300), "reward")
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                      num_hidden_layers=num_layers, num_attention_heads=num_heads,
                      num_key_value_heads=max(1, num_heads // 2), head_dim=hidden_size // num_heads,
                      max_position_embeddings=4096, tie_word_embeddings=False, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, num_labels=1)
    _seeded(seed + 1)
    model = AutoModelForSequenceClassification.from_config(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
