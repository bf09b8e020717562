"""Prompt templates: EvalPlus's chat protocol (user turn + assistant prefill) reproduced exactly."""

import pytest

from grlo.errors import GrloError
from grlo.eval import templates
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
