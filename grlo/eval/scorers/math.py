"""Math: last \\boxed{} answer, math-verify equivalence with the gold answer first (grlo.rewards.math.grade)."""

from __future__ import annotations

import time

from grlo.eval.scorers import ScoreResult
from grlo.rewards.math import grade


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    records = []
    for prob, comps in zip(problems, completions):
        t0 = time.perf_counter()
        ex, sc, vd = [], [], []
        for c in comps:
            g = grade(str(prob["answer"]), c)
            ex.append(g["extracted"])
            sc.append(1.0 if g["correct"] else 0.0)
            vd.append("correct" if g["correct"] else ("no_answer" if g["extracted"] is None else "wrong"))
        records.append({"extracted": ex, "scores": sc, "verdicts": vd, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"checker": "math-verify, gold first, last \\boxed{}"})
