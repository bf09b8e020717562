"""Prompt templates, applied once at normalisation time: a normalised row's "prompt" is the final user message.

Each template takes the raw normalised fields (problem text, choices, starter code ...) and returns the user
message. Sources: math_boxed is the "reason step by step ... \\boxed{}" instruction used by Qwen2.5-Math / Qwen3
and most zero-shot math evaluations; choice_answer_line follows OpenAI simple-evals' multiple-choice template
("Answer: LETTER" on the last line); code_evalplus is EvalPlus's chat instruction; code_lcb follows
LiveCodeBench's generation prompt; identity leaves chat prompts (IFEval, AlpacaEval) untouched.
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


def code_evalplus(row: dict) -> str:
    return (
        "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
        f"```python\n{row['problem'].strip()}\n```"
    )


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


def apply(name: str, row: dict) -> str:
    try:
        fn = TEMPLATES[name]
    except KeyError:
        raise GrloError(f"unknown prompt_template {name!r} (known: {', '.join(TEMPLATES)})") from None
    return fn(row)
