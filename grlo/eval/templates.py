"""Prompt templates, applied once at normalisation time: a normalised row's "prompt" is the final user message.

Each template takes the raw normalised fields (problem text, choices, starter code ...) and returns the user
message. Sources: math_boxed is the "reason step by step ... \\boxed{}" instruction used by Qwen2.5-Math / Qwen3
and most zero-shot math evaluations; choice_answer_line follows OpenAI simple-evals' multiple-choice template
("Answer: LETTER" on the last line); code_evalplus is EvalPlus's chat instruction; code_lcb follows
LiveCodeBench's generation prompt; identity leaves chat prompts (IFEval, AlpacaEval) untouched.

Assistant prefill. A template may also open the assistant's turn (`prefill(name)`): generation appends the prefill
after the rendered chat prompt (generation prompt included), the model continues from there, and scoring puts the
prefill back in front of the completion (grlo.eval.score) so extractors see the whole answer. Only code_evalplus has
one: EvalPlus 0.3.1's chat protocol (evalplus/codegen.py `response_prefix`, evalplus/provider/utility.py
`make_raw_chat_prompt`) renders the user turn "{instruction_prefix}\n```\n{task prompt}\n```\n" and an assistant
turn "{response_prefix}\n```python\n" that is cut right after the opening fence, so the model writes only code.
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


def code_lcb(row: dict) -> str:
    head = (
        "You will be given a question (problem specification) and will generate a correct Python program that "
        "matches the specification and passes all tests.\n\n"
        f"Question: {row['problem'].strip()}\n\n"
    )
    starter = (row.get("starter_code") or "").strip()
    if starter:
        return head + (
            "You will use the following starter code to write the solution to the problem and enclose your code "
            f"within delimiters.\n```python\n{starter}\n```\n"
        )
    return head + (
        "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
        "sample inputs). Enclose your code within delimiters as follows.\n```python\n# YOUR CODE HERE\n```\n"
    )


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
