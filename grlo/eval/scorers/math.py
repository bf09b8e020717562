"""Math: last \\boxed{} answer, math-verify equivalence with the gold answer first (grlo.rewards.math.grade).

Currency: MATH-500 golds such as `\\$18.90`, `\\$36` and `\\$32,\\!348` hold an escaped dollar sign, which
math-verify reads as a LaTeX delimiter and then fails to parse. The escaped dollar (also as `\\text{\\$}`) is a
unit, not part of the number, so it is removed from the gold and the extracted answer before the comparison
(our rule; the extracted answer is recorded as the model wrote it).
"""

from __future__ import annotations

import re
import time

from grlo.eval.scorers import ScoreResult
from grlo.rewards.math import extract_boxed, is_equivalent

_CURRENCY = re.compile(r"\\text\s*\{\s*\\\$\s*\}|\\\$")


def strip_currency(answer: str | None) -> str | None:
    """Remove escaped dollar signs (`\\$`, `\\text{\\$}`) from an answer; None stays None."""
    return None if answer is None else _CURRENCY.sub("", answer).strip()


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    records = []
    for prob, comps in zip(problems, completions):
        t0 = time.perf_counter()
        gold = strip_currency(str(prob["answer"]))
        ex, sc, vd = [], [], []
        for c in comps:
            extracted = extract_boxed(c)
            ok = is_equivalent(gold, strip_currency(extracted))
            ex.append(extracted)
            sc.append(1.0 if ok else 0.0)
            vd.append("correct" if ok else ("no_answer" if extracted is None else "wrong"))
        records.append({"extracted": ex, "scores": sc, "verdicts": vd, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"checker": "math-verify, gold first, last \\boxed{}; escaped dollars removed"})
