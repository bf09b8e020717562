"""Prompt templates, applied once at normalisation time: a normalised row's "prompt" is the final user message.

Each template takes the raw normalised fields (problem text, choices, starter code ...) and returns the user
message. Sources: math_boxed is the "reason step by step ... \\boxed{}" instruction used by Qwen2.5-Math / Qwen3
and most zero-shot math evaluations; choice_answer_line follows OpenAI simple-evals' multiple-choice template
("Answer: LETTER" on the last line); code_evalplus is EvalPlus's chat instruction; code_lcb follows
LiveCodeBench's generation prompt; identity leaves chat prompts (IFEval, AlpacaEval) untouched.

Assistant prefill. A template may also open the assistant's turn (`prefill(name)`). Only code_evalplus has one:
EvalPlus 0.3.1's chat protocol (evalplus/codegen.py `response_prefix`, evalplus/provider/utility.py
`make_raw_chat_prompt`) renders the user turn "{instruction_prefix}\n```\n{task prompt}\n```\n" and an assistant
turn "{response_prefix}\n```python\n" through the model's chat template and cuts it right after the opening fence,
so the model writes only code. Generation renders it the same way (render_with_prefill): whatever the template writes
at the start of an assistant turn comes first (Qwen3's template writes an empty `<think>\n\n</think>\n\n` there, in
thinking and non-thinking mode alike, so under EvalPlus's protocol a Qwen3 model does not think). Generation records
that opening (assistant_opening) and scoring puts it back in front of each completion, so the code is read after
the think block.
"""

from __future__ import annotations

from typing import Callable

from grlo.errors import GrloError

LETTERS = "ABCDEFGHIJ"


def math_boxed(row: dict) -> str:
    return f"{row['problem'].strip()}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def choice_answer_line(row: dict) -> str:
    choices = row["choices"]
    letters = LETTERS[: len(choices)]
    opts = "\n".join(f"{L}) {c}" for L, c in zip(letters, choices))
    return (
        "Answer the following multiple choice question. The last line of your response should be of the following "
        f"format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
        f"answering.\n\n{row['problem'].strip()}\n\n{opts}"
    )


EVALPLUS_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem in a markdown "
                        "code block:")
EVALPLUS_RESPONSE = "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"


def code_evalplus(row: dict) -> str:
    # EvalPlus's hf/vLLM chat providers fence the task prompt with a bare ``` (its OpenAI provider uses ```python).
    return f"{EVALPLUS_INSTRUCTION}\n```\n{row['problem'].strip()}\n```\n"


# LiveCodeBench prompts (lcb_runner/prompts/code_generation.py, commit 28fef95). Two styles, chosen per model mode at
# generation time (chat_messages):
# - thinking (and every model whose mode is not explicitly non-thinking): LCB's QwQ style (LMStyle.QwQ, which the
#   Qwen3 report uses for thinking mode): system SYSTEM_MESSAGE_QWEN_QWQ and the user turn of
#   get_qwen_qwq_question_template_answer, the chat markup left to the model's own template;
# - non-thinking (chat `enable_thinking: false`): LCB's official chat prompt (LMStyle.OpenAIChat): system
#   SYSTEM_MESSAGE_GENERIC and the user turn of get_generic_question_template_answer.
LCB_SYSTEM_GENERIC = ("You are an expert Python programmer. You will be given a question (problem specification) and "
                      "will generate a correct Python program that matches the specification and passes all tests.")
LCB_SYSTEM_QWQ = ("You are a helpful and harmless assistant. You are Qwen developed by Alibaba. You should think "
                  "step-by-step.")
LCB_WITH_STARTER = ("You will use the following starter code to write the solution to the problem and enclose your "
                    "code within delimiters.")
LCB_WITHOUT_STARTER = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
                       "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when "
                       "the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.")


def code_lcb(row: dict) -> str:
    """The user turn of LCB's QwQ style (its text up to the `<|im_end|>` the chat template writes)."""
    text = ("You will be given a question (problem specification) and will generate a correct Python program that "
            f"matches the specification and passes all tests.\n\nQuestion: {row['problem']}\n\n")
    if row.get("starter_code"):
        return text + f"{LCB_WITH_STARTER}\n```python\n{row['starter_code']}\n```\n\n"
    return text + f"{LCB_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"


def code_lcb_generic(row: dict) -> str:
    """The user turn of LCB's official chat prompt (get_generic_question_template_answer)."""
    text = f"### Question:\n{row['problem']}\n\n"
    if row.get("starter_code"):
        text += f"### Format: {LCB_WITH_STARTER}\n```python\n{row['starter_code']}\n```\n\n"
    else:
        text += f"### Format: {LCB_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def thinking_mode(chat_kwargs: dict | None) -> bool:
    """A model runs in non-thinking mode only when its chat settings say so (`enable_thinking: false`)."""
    return (chat_kwargs or {}).get("enable_thinking") is not False


def chat_messages(name: str | None, row: dict, chat_kwargs: dict | None = None) -> list[dict]:
    """The chat messages of one normalised row for a model with these chat settings. Most templates give one user
    turn (the row's prompt); code_lcb gives LCB's prompt style for the model's mode."""
    if name == "code_lcb":
        if thinking_mode(chat_kwargs):
            return [{"role": "system", "content": LCB_SYSTEM_QWQ}, {"role": "user", "content": row["prompt"]}]
        return [{"role": "system", "content": LCB_SYSTEM_GENERIC}, {"role": "user", "content": code_lcb_generic(row)}]
    return [{"role": "user", "content": row["prompt"]}]


def prompt_style(name: str | None, chat_kwargs: dict | None = None) -> str:
    """A label of the prompt style chat_messages uses (recorded with the generations)."""
    if name == "code_lcb":
        return "lcb-qwq" if thinking_mode(chat_kwargs) else "lcb-official-chat"
    return name or "none"


# EvalPlus 0.3.1 evalplus/provider/utility.py make_raw_chat_prompt: the chat [user, assistant(response + MAGIC +
# closing fence)] rendered by the model's own template (no generation prompt), cut at the magic string. A template
# that writes something at the start of an assistant turn (Qwen3: its `<think>...</think>` block) has it before the
# response prefix, as in EvalPlus.
_SPLIT = "-[[]]-grlo-prefill-split-[[]]-"


def render_with_prefill(tokenizer, messages: list[dict], chat_kwargs: dict, prefill: str) -> str:
    """The prompt text for a chat whose assistant turn opens with `prefill`, rendered as EvalPlus renders it."""
    turn = {"role": "assistant", "content": prefill + _SPLIT + "\n```\n"}
    full = tokenizer.apply_chat_template(list(messages) + [turn], tokenize=False, **(chat_kwargs or {}))
    if _SPLIT not in full:
        raise GrloError("the chat template drops the assistant prefill: cannot render an assistant prefill with it")
    return full.split(_SPLIT)[0]


def assistant_opening(tokenizer, messages: list[dict], chat_kwargs: dict, prefill: str) -> str:
    """The text between the rendered generation prompt and the model's first token: what scoring puts back in front
    of each completion (for Qwen3: its empty think block, then the prefill). "" without a prefill."""
    if not prefill:
        return ""
    head = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True,
                                         **(chat_kwargs or {}))
    full = render_with_prefill(tokenizer, messages, chat_kwargs, prefill)
    return full[len(head):] if full.startswith(head) else prefill


def identity(row: dict) -> str:
    return row["problem"]


TEMPLATES: dict[str, Callable[[dict], str]] = {
    "math_boxed": math_boxed,
    "choice_answer_line": choice_answer_line,
    "code_evalplus": code_evalplus,
    "code_lcb": code_lcb,
    "identity": identity,
}


# The assistant turn's opening per template (absent = the model starts its turn from scratch).
PREFILLS: dict[str, str] = {
    "code_evalplus": f"{EVALPLUS_RESPONSE}\n```python\n",
}


def prefill(name: str | None) -> str:
    """The assistant prefill of a prompt template ("" when it has none)."""
    if name is not None and name not in TEMPLATES:
        raise GrloError(f"unknown prompt_template {name!r} (known: {', '.join(TEMPLATES)})")
    return PREFILLS.get(name or "", "")


def apply(name: str, row: dict) -> str:
    try:
        fn = TEMPLATES[name]
    except KeyError:
        raise GrloError(f"unknown prompt_template {name!r} (known: {', '.join(TEMPLATES)})") from None
    return fn(row)
