"""The model-based verifier (grlo.rewards.general_reasoner.ModelVerifier) on its real path: a causal LM loaded from
disk with transformers, prompts batched with left padding, greedy decoding, only the new tokens decoded. Two tiny
verifier models whose greedy output is known (one always writes "Final Decision: Yes", one "Final Decision: No")
check both verdicts: a verifier that always says no, or always yes, or reads the pass tag in the prompt, fails."""

import pytest

from grlo.rewards import general_reasoner as gr


def build_fixed_verifier(out, decision: str):
    """A Qwen3 LM whose blocks add nothing (attention and MLP output projections are zero), so the next token depends
    on the last token only: after the prompt's final ":" and after itself it emits one added token, the whole text
    "Final Decision: <decision>"."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    from grlo.models.tiny import build_tokenizer

    tok = build_tokenizer(0, 384, "policy")
    tag = f"Final Decision: {decision}"
    tok.add_tokens([tag])
    colon, tag_id = tok.convert_tokens_to_ids(":"), tok.convert_tokens_to_ids(tag)
    prompt_ids = tok(gr.verifier_prompt("q", "g", "a"))["input_ids"]
    assert prompt_ids[-1] == colon  # verifier prompts end with "Assistant:"
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=4096,
                      tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        emb.zero_()
        head.zero_()
        emb[colon, 0] = 1.0
        emb[tag_id, 1] = 1.0
        head[tag_id, 0] = head[tag_id, 1] = 10.0
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def verifiers(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    return {d: build_fixed_verifier(root / d, d) for d in ("Yes", "No")}


QUESTIONS = ["Capital of France?", "2 + 2?", "Largest planet?"]
GOLDS = ["Paris", "4", "Jupiter"]


def test_a_verifier_that_says_yes_passes_every_answer(verifiers):
    v = gr.ModelVerifier(verifiers["Yes"], max_new_tokens=3, batch_size=2)  # batches of 2 and 1, left-padded
    assert v.judge(QUESTIONS, GOLDS, ["Lyon", "5", None]) == [True, True, True]
    assert v._model is not None


def test_a_verifier_that_says_no_fails_every_answer(verifiers):
    # the prompt itself contains the pass tag ('output "Final Decision: Yes"'): only the new tokens are read
    v = gr.ModelVerifier(verifiers["No"], max_new_tokens=3, batch_size=2)
    assert v.judge(QUESTIONS, GOLDS, ["Paris", "4", "Jupiter"]) == [False, False, False]


def test_the_verifier_decides_the_shaped_reward(verifiers):
    comps = ["\\boxed{Lyon}", "\\boxed{4}", "no boxed answer at all"]
    yes = gr.make_reward_funcs(length_fn=len, verifier=gr.ModelVerifier(verifiers["Yes"], max_new_tokens=2))[0]
    no = gr.make_reward_funcs(length_fn=len, verifier=gr.ModelVerifier(verifiers["No"], max_new_tokens=2))[0]
    kw = dict(prompts=[None] * 3, completions=comps, answer=GOLDS, question=QUESTIONS)
    # yes: "Lyon" counts as correct although math-verify would say no (length penalty |5 - 4| x 0.05)
    assert yes(**kw) == pytest.approx([1.0 - 0.05, 1.0, gr.NO_ANSWER_REWARD])
    # no: "4" counts as wrong although it equals the gold; no answer stays -0.5 whatever the verifier says
    assert no(**kw) == pytest.approx([0.0, 0.0, gr.NO_ANSWER_REWARD])
