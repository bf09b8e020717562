"""Turn ends: a model shaped like Qwen3-Base (eos <|endoftext|>, chat turns closed by <|im_end|>) that writes past
its turn is cut at the turn end; without the stop token the invented next turn would be scored."""

import pytest
import torch

from grlo.errors import GrloError
from grlo.generation import Request, Sampling, TransformersBackend, template_turn_end

SCRIPT = "The answer is \\boxed{4}.<|im_end|>\n<|im_start|>user\nAnd now? \\boxed{5}<|endoftext|>"


def qwen3_base_like():
    """A tiny tokenizer + model with Qwen3-Base's shape: eos <|endoftext|>, the ChatML template ending turns with
    <|im_end|>, and a generation config that ends only on eos (as Qwen3-4B-Base's generation_config.json)."""
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    from grlo.models.tiny import build_tokenizer

    tok = build_tokenizer(5, 384, "policy")
    tok.add_special_tokens({"eos_token": "<|endoftext|>"})
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok, model


class Scripted:
    """A logits processor that makes the model write SCRIPT token by token, whatever its weights."""

    def __init__(self, ids, prompt_len):
        self.ids, self.prompt_len = ids, prompt_len

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_len
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[min(step, len(self.ids) - 1)]] = 0.0
        return forced


def _generate(stop_tokens):
    tok, model = qwen3_base_like()
    be = TransformersBackend("unused", batch_size=1, model=model, tokenizer=tok)
    req = Request([{"role": "user", "content": "What is 2+2?"}])
    plen = len(tok(tok.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"])
    be.logits_processors.append(Scripted(tok(SCRIPT, add_special_tokens=False)["input_ids"], plen))
    return tok, be.generate([req], Sampling(temperature=0.0, max_tokens=64, stop_tokens=stop_tokens), progress=False)[0][0]


def test_the_tokenizer_is_shaped_like_qwen3_base():
    tok, model = qwen3_base_like()
    assert tok.eos_token == "<|endoftext|>" and template_turn_end(tok) == "<|im_end|>"
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|endoftext|>")


def test_generation_past_the_turn_is_cut_at_the_turn_end():
    tok, c = _generate(("<|im_end|>",))
    assert c.text == "The answer is \\boxed{4}." and c.finish_reason == "stop"
    assert c.num_tokens == len(tok("The answer is \\boxed{4}.<|im_end|>", add_special_tokens=False)["input_ids"])


def test_without_the_turn_end_the_invented_turn_is_checked_and_refused():
    # The backend refuses stop tokens that miss the template's turn end: what would otherwise happen is that the
    # generation runs on to eos and the last \boxed{} (5, from the invented user turn) is scored.
    with pytest.raises(GrloError, match="ends an assistant turn with '<\\|im_end\\|>'"):
        _generate(())


def test_eos_is_reported_as_eos_when_it_is_not_the_turn_end():
    tok, model = qwen3_base_like()
    be = TransformersBackend("unused", batch_size=1, model=model, tokenizer=tok)
    req = Request([{"role": "user", "content": "Hi"}])
    plen = len(tok(tok.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"])
    be.logits_processors.append(Scripted(tok("Hello<|endoftext|>", add_special_tokens=False)["input_ids"], plen))
    c = be.generate([req], Sampling(temperature=0.0, max_tokens=16, stop_tokens=("<|im_end|>",)), progress=False)[0][0]
    assert (c.text, c.finish_reason) == ("Hello", "eos")
    be.logits_processors[0] = Scripted(tok("Hello again and again", add_special_tokens=False)["input_ids"] * 10, plen)
    c = be.generate([req], Sampling(temperature=0.0, max_tokens=5, stop_tokens=("<|im_end|>",)), progress=False)[0][0]
    assert (c.num_tokens, c.finish_reason) == (5, "length")


def test_what_the_turn_end_prevents(monkeypatch):
    # With the template check switched off and no stop token, the same generation runs to eos and the scored text
    # holds the invented user turn, whose \boxed{5} is the last one an extractor would take.
    import grlo.generation as G

    monkeypatch.setattr(G, "check_turn_end", lambda tok, tokens: None)
    _, c = _generate(())
    assert c.finish_reason == "eos" and c.text.rstrip().endswith("\\boxed{5}") and "user" in c.text
