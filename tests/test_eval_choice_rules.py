"""GPQA's grader (openai/simple-evals) is not on PyPI: these tests pin its rules (common.py
ANSWER_PATTERN_MULTICHOICE, gpqa_eval.py: re.search, letter compared as written) and our documented extension."""

import re

import pytest

from grlo.eval.scorers.choice import extract_letter

# simple-evals common.py: ANSWER_PATTERN_MULTICHOICE (the rule pinned, not our code)
SIMPLE_EVALS_PATTERN = r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?"


@pytest.mark.parametrize("text", ["Answer: C", "answer:$B$", "Reasoning...\nAnswer: D\nAnswer: A", "ANSWER :\tb",
                                  "Final Answer: $A$ because", "no letter here", "Answer:  E"])
def test_simple_evals_pattern_wins_where_it_matches(text):
    m = re.search(SIMPLE_EVALS_PATTERN, text)
    if m:
        assert extract_letter(text) == m.group(1)


@pytest.mark.parametrize("text, letter", [
    ("So the answer is a mixture of both isomers.", None),   # an article / a word is not letter A
    ("The answer is a", None),
    ("the answer is (c)", "C"),
    ("**Answer:** (B)", "B"),
    ("The answer is B.", "B"),
    ("The answer is Boron.", None),
    ("Thus the answer is D, and not A", "D"),
    ("\\boxed{C}", "C"),
])
def test_extension_reads_letters_not_words(text, letter):
    assert extract_letter(text) == letter
