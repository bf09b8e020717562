"""Multiple choice (GPQA-Diamond): documented letter extraction, exact match with the gold letter.

Extraction, first rule that matches wins:
1. the LAST "Answer: X" / "answer is X" / "answer is (X)" (case-insensitive, optional markdown/parentheses), the
   format the prompt asks for (OpenAI simple-evals' template);
2. the last \\boxed{X} whose content is a single valid letter (models trained on math often box the letter);
3. otherwise no answer (counted wrong). A bare letter elsewhere in the text is NOT used: it would reward guessing.
Only letters among the problem's options (A-D for GPQA) count.
"""

from __future__ import annotations

import re
import time

from grlo.eval.scorers import ScoreResult
from grlo.eval.templates import LETTERS
from grlo.rewards.math import extract_boxed

_ANSWER = re.compile(r"answer(?:\s+is)?\s*[:：]?\s*[\*_\s]*\(?\s*([A-J])\s*\)?(?![A-Za-z])", re.I)


def extract_letter(text: str, n_choices: int = 4) -> str | None:
    valid = LETTERS[:n_choices]
    hits = [m.group(1).upper() for m in _ANSWER.finditer(text or "")]
    hits = [h for h in hits if h in valid]
    if hits:
        return hits[-1]
    boxed = extract_boxed(text or "")
    if boxed:
        b = re.sub(r"^\\text\{(.*)\}$", r"\1", boxed.strip()).strip("() ").upper()
        if len(b) == 1 and b in valid:
            return b
    return None


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    records = []
    for p, comps in zip(problems, completions):
        t0 = time.perf_counter()
        ex = [extract_letter(c, len(p["choices"])) for c in comps]
        sc = [1.0 if e == p["answer"] else 0.0 for e in ex]
        vd = ["correct" if s else ("no_answer" if e is None else "wrong") for e, s in zip(ex, sc)]
        records.append({"extracted": ex, "scores": sc, "verdicts": vd, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"extraction": "last 'Answer: X', else a boxed single letter"})
