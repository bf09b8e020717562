"""General-Reasoner's reward shape and the plain correctness reward, both on the shared math checker."""

import pytest

from grlo.rewards import general_reasoner as gr
from grlo.rewards import math as shared_math


@pytest.mark.parametrize("completion", [
    "We get \\boxed{\\frac{1}{2}}.",
    "So the result is \\boxed{\\dfrac{1}{2}}",
    "Therefore \\boxed{0.5}",
    "\\boxed{\\tfrac12}",
    "Final Answer: 1/2\n",
])
def test_correct_in_several_forms_is_rewarded(completion):
    v = gr.shaped_reward("\\frac{1}{2}", completion)
    assert v.correct
    # 1 minus 0.05 per unit of length difference, difference capped at 10
    expected = 1.0 - 0.05 * min(10, abs(len("\\frac{1}{2}") - len(v.extracted)))
    assert v.reward == pytest.approx(expected)
    assert gr.correctness_reward("\\frac{1}{2}", completion) == 1.0


def test_exact_match_has_no_length_penalty():
    v = gr.shaped_reward("x^2+1", "so \\boxed{1 + x^2}", length_fn=lambda s: len(s.replace(" ", "")))
    assert v.correct and v.penalty == 0.0 and v.reward == 1.0


def test_no_answer_is_minus_half():
    for text in ["I think it is probably seven", "", "\\boxed{3", None]:
        v = gr.shaped_reward("7", text)
        assert v.reward == -0.5 and v.extracted is None and not v.correct
        assert gr.correctness_reward("7", text) == 0.0


def test_wrong_answer_is_zero():
    v = gr.shaped_reward("7", "the answer: \\boxed{8}")
    assert (v.reward, v.correct, v.extracted) == (0.0, False, "8")
    assert gr.shaped_reward("\\frac{1}{3}", "\\boxed{0.3}").reward == 0.0


def test_length_penalty_grows_then_caps_at_ten_units():
    gold = "2"
    # numerically equal answers of growing length: 2.0, 2.00, ... ; penalty 0.05 per extra unit, capped at 10
    for extra in (1, 3, 9, 10, 25):
        pred = "2." + "0" * (extra - 1)
        v = gr.shaped_reward(gold, f"\\boxed{{{pred}}}")
        assert v.correct
        assert v.penalty == pytest.approx(0.05 * min(10, extra))
        assert v.reward == pytest.approx(1 - 0.05 * min(10, extra))
    assert gr.length_penalty("a", "a" * 100) == pytest.approx(0.5)


def test_length_uses_the_given_tokenizer_count():
    # a "tokenizer" counting digits: "2.000" vs "2" -> 3 units, although the strings differ by 4 characters
    v = gr.shaped_reward("2", "\\boxed{2.000}", length_fn=lambda s: sum(c.isdigit() for c in s))
    assert v.correct and v.penalty == pytest.approx(0.15)


def test_model_verdict_overrides_the_math_check():
    assert gr.shaped_reward("Paris", "\\boxed{paris}", correct=True).reward == pytest.approx(1.0)
    assert gr.shaped_reward("3", "\\boxed{3}", correct=False).reward == 0.0
    # no extractable answer stays -0.5 whatever the verifier would say
    assert gr.shaped_reward("3", "no idea", correct=True).reward == -0.5


def test_extraction_prefers_boxed_and_takes_the_last_marker():
    assert gr.extract_answer("Answer: 4\nthen \\boxed{5}") == "5"
    assert gr.extract_answer("Answer: 4\nFinal Answer: 6<|im_end|>") == "6"
    assert gr.extract_answer("The answer is: $x = 3$.") == "x = 3"
    # the boxed path is the shared checker's own extractor
    text = "a \\boxed{\\frac{2}{3}} b"
    assert gr.extract_answer(text) == shared_math.extract_boxed(text)


def test_rewards_use_the_shared_checker(monkeypatch):
    calls = []

    def fake(gold, pred):
        calls.append((gold, pred))
        return True

    monkeypatch.setattr(gr, "is_equivalent", fake)
    assert gr.shaped_reward("1", "\\boxed{one}").correct
    assert calls == [("1", "one")]
    assert gr.is_equivalent is fake and shared_math.is_equivalent is not fake
    monkeypatch.undo()
    assert gr.is_equivalent is shared_math.is_equivalent  # imported, not a copy


def test_trl_reward_funcs_on_conversational_completions():
    logged = {}
    shaped, correct = gr.make_reward_funcs(length_fn=len)
    completions = [[{"role": "assistant", "content": "\\boxed{4}"}],
                   [{"role": "assistant", "content": "\\boxed{5}"}],
                   [{"role": "assistant", "content": "no answer here"}],
                   [{"role": "assistant", "content": "\\boxed{4.0}"}]]
    answers = ["4"] * 4
    r = shaped(prompts=[None] * 4, completions=completions, answer=answers,
               log_metric=lambda k, v: logged.__setitem__(k, v), trainer_state=None)
    assert r == pytest.approx([1.0, 0.0, -0.5, 1.0 - 0.05 * 2])
    assert correct(prompts=[None] * 4, completions=completions, answer=answers) == [1.0, 0.0, 0.0, 1.0]
    assert logged["rewards/parts/no_answer_frac"] == pytest.approx(0.25)
    assert logged["rewards/parts/length_penalty_mean"] == pytest.approx(0.1 / 4)
    assert (shaped.__name__, correct.__name__) == ("general_reasoner", "correct")


def test_model_verifier_prompts_and_verdicts():
    seen = []

    def generate(prompts):
        seen.extend(prompts)
        return ["reasoning... Final Decision: Yes", "Final Decision: No", "Final Decision: Yes"]

    v = gr.ModelVerifier("unused", generate_fn=generate)
    shaped, _ = gr.make_reward_funcs(length_fn=len, verifier=v)
    comps = ["\\boxed{Paris}", "\\boxed{Lyon}", "no answer"]
    out = shaped(prompts=[None] * 3, completions=comps, answer=["Paris"] * 3, question=["Capital of France?"] * 3)
    assert out == pytest.approx([1.0, 0.0, -0.5])
    assert "### Question: Capital of France?" in seen[0]
    assert "### Ground Truth Answer: Paris" in seen[0] and "### Student Answer: Paris" in seen[0]
    assert "### Student Answer: No Answer" in seen[2]
    assert seen[0].startswith("User: ") and seen[0].endswith("Assistant:")


def test_model_verifier_output_count_mismatch_fails():
    v = gr.ModelVerifier("unused", generate_fn=lambda prompts: ["Final Decision: Yes"])
    with pytest.raises(RuntimeError):
        v.judge(["q", "q"], ["1", "2"], ["1", "2"])
