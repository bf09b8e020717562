"""Prompt templates: EvalPlus's chat protocol (user turn + assistant prefill) reproduced exactly."""

import pytest

from grlo.errors import GrloError
from grlo.registry import templates
from grlo.generation import Request, render_chat


class ChatMLTokenizer:
    """Renders ChatML like Qwen's template (enough for apply_chat_template(tokenize=False))."""

    chat_template = "chatml"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False, **kw):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def test_evalplus_chat_prompt_and_prefill_equal_evalplus_own_rendering():
    utility = pytest.importorskip("evalplus.provider.utility")
    task = 'def add(a, b):\n    """Return a + b."""\n'
    instruction = ("Please provide a self-contained Python script that solves the following problem in a markdown "
                   "code block:")
    response = ("Below is a Python script with a self-contained function that solves the problem and passes "
                "corresponding tests:")
    tok = ChatMLTokenizer()
    theirs = utility.make_raw_chat_prompt(task, instruction, response, tok)
    user = templates.apply("code_evalplus", {"problem": task})
    req = Request([{"role": "user", "content": user}], {}, templates.prefill("code_evalplus"))
    ours = render_chat(tok, req.messages, req.chat_kwargs, req.prefill)
    assert ours == theirs
    assert ours.endswith("passes corresponding tests:\n```python\n")


def test_only_evalplus_has_a_prefill_and_unknown_templates_fail():
    assert {n for n in templates.TEMPLATES if templates.prefill(n)} == {"code_evalplus"}
    assert templates.prefill(None) == ""
    with pytest.raises(GrloError, match="unknown prompt_template"):
        templates.prefill("nope")


def test_choice_prompt_shows_the_answer_shape_simple_evals_reads():
    from grlo.eval.scorers.choice import extract_letter

    prompt = templates.apply("choice_answer_line", {"problem": "Q?", "choices": ["w", "x", "y", "z"]})
    assert "'Answer: $LETTER'" in prompt and prompt.endswith("D) z")
    assert extract_letter("Answer: $B$") == "B"


def test_both_back_ends_tokenize_the_prefilled_prompt():
    """prompt_token_ids (used by the transformers and vLLM back-ends) renders the prefill after the chat prompt."""
    from grlo.generation import prompt_token_ids

    class Tok(ChatMLTokenizer):
        def __call__(self, text, add_special_tokens=True):
            self.seen = text
            return {"input_ids": list(range(len(text)))}

    tok = Tok()
    pre = templates.prefill("code_evalplus")
    (ids,) = prompt_token_ids(tok, [Request([{"role": "user", "content": "task"}], {}, pre)])
    assert tok.seen.endswith("<|im_start|>assistant\n" + pre) and len(ids) == len(tok.seen)


def _qwen3_tokenizer():
    """A tokenizer carrying the real Qwen3 chat template: the "Original Qwen3 chat template" that trl (a pinned
    dependency) ships as trl/chat_templates/qwen3.jinja. Only the template matters for tokenize=False."""
    from importlib import resources

    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tok.chat_template = (resources.files("trl") / "chat_templates" / "qwen3.jinja").read_text()
    return tok


QWEN3_THINK_OPENING = "<think>\n\n</think>\n\n"


@pytest.mark.parametrize("chat", [{"enable_thinking": True}, {"enable_thinking": False}, {}])
@pytest.mark.parametrize("name", sorted(templates.PREFILLS))
def test_prefilled_prompt_on_qwen3_template_equals_evalplus_rendering(name, chat):
    """Every benchmark with a prefill (code_evalplus: HumanEval+, MBPP+), Qwen3-4B in thinking and non-thinking mode:
    the prompt equals EvalPlus's make_raw_chat_prompt through the model's template, whose assistant turn starts with
    the template's think block; scoring reads the code after that block."""
    utility = pytest.importorskip("evalplus.provider.utility")
    from grlo.eval.thinking import split_think
    from grlo.generation import _request, render_chat

    tok = _qwen3_tokenizer()
    task = 'def add(a, b):\n    """Return a + b."""\n'
    row = {"id": "HumanEval/x", "problem": task, "prompt": templates.apply(name, {"problem": task})}
    bench = {"code_evalplus": "humaneval_plus"}[name]
    req = _request(bench, row, chat)
    ours = render_chat(tok, req.messages, req.chat_kwargs, req.prefill)
    theirs = utility.make_raw_chat_prompt(task, templates.EVALPLUS_INSTRUCTION, templates.EVALPLUS_RESPONSE, tok)
    assert ours == theirs
    assert ours.endswith("<|im_start|>assistant\n" + QWEN3_THINK_OPENING + templates.prefill(name))
    opening = templates.assistant_opening(tok, req.messages, chat, req.prefill)
    gen_prompt = tok.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True, **chat)
    assert gen_prompt + opening == ours  # the model continues exactly after the recorded opening
    _, answer = split_think(opening + "    return a + b\n```")
    assert answer == templates.prefill(name) + "    return a + b\n```"


def test_lcb_prompt_per_mode():
    """LiveCodeBench: QwQ style (system + user) for thinking models, LCB's official chat prompt for non-thinking."""
    row = {"problem": "Add two numbers.", "starter_code": ""}
    row["prompt"] = templates.apply("code_lcb", row)
    think = templates.chat_messages("code_lcb", row, {"enable_thinking": True})
    assert think[0] == {"role": "system", "content": templates.LCB_SYSTEM_QWQ}
    assert think[1]["content"].startswith("You will be given a question") and "Question: Add two numbers." in think[1]["content"]
    assert templates.chat_messages("code_lcb", row, {}) == think  # a model without a mode switch: the QwQ style
    plain = templates.chat_messages("code_lcb", row, {"enable_thinking": False})
    assert plain[0]["content"] == templates.LCB_SYSTEM_GENERIC
    assert plain[1]["content"].startswith("### Question:\nAdd two numbers.\n\n### Format: Read the inputs from stdin")
    assert plain[1]["content"].endswith("### Answer: (use the provided format with backticks)\n\n")
    starter = {"problem": "P", "starter_code": "class Solution:\n    def f(self):\n        "}
    assert "```python\nclass Solution:\n    def f(self):\n        \n```" in templates.code_lcb_generic(starter)
    assert templates.chat_messages("math_boxed", {"prompt": "x"}, {"enable_thinking": False}) == [
        {"role": "user", "content": "x"}]
