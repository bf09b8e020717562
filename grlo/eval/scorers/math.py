"""Math: last \\boxed{} answer, math-verify equivalence with the gold answer first (grlo.rewards.math.grade).

Currency: MATH-500 golds such as `\\$18.90`, `\\$36` and `\\$32,\\!348` hold an escaped dollar sign; the checker
(grlo.rewards.math) wraps an answer in `$...$` only when it holds no `$`, so such a gold would not parse. The
escaped dollar (also as `\\text{\\$}`) is a unit, so it is removed from the gold and the extracted answer before
the comparison; the verdicts then equal math-verify's own on the `$`-wrapped gold (tests/test_eval_parity.py).

Several boxes: a completion with more than one \\boxed{} is judged as math-verify judges it, by math-verify's own
extraction on the (currency-stripped) completion (boxes of one expression become a set, `\\boxed{1}, \\boxed{2}`
= {1, 2}; otherwise its own choice of box), so a multi-answer gold "1, 2" matches and a hedge over several boxes
does not earn the last one. The reward checker (grlo.rewards.math) keeps its last-box rule; this is the eval path.
A completion without any box has no answer here, where math-verify would fall back to the last expression in the
text (declared deviation: the prompt asks for \\boxed{}).
"""

from __future__ import annotations

import re
import threading
import time

from grlo.eval.scorers import ScoreResult
from grlo.rewards.math import extract_boxed, is_equivalent

_CURRENCY = re.compile(r"\\text\s*\{\s*\\\$\s*\}|\\\$")


def strip_currency(answer: str | None) -> str | None:
    """Remove escaped dollar signs (`\\$`, `\\text{\\$}`) from an answer; None stays None."""
    return None if answer is None else _CURRENCY.sub("", answer).strip()


def n_boxes(text: str) -> int:
    return sum((text or "").count(m) for m in ("\\boxed", "\\fbox"))


def verify_completion(gold: str, text: str) -> tuple[bool, str | None]:
    """math-verify on a whole completion, gold first: (correct, math-verify's extracted answer string)."""
    from math_verify import parse, verify  # heavy: math_verify

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        g = parse(gold if "$" in gold else f"${gold}$", parsing_timeout=timeout)
        p = parse(text, parsing_timeout=timeout)
        if not g or not p:
            return False, None
        return bool(verify(g, p, timeout_seconds=timeout)), str(p[-1])
    except Exception:  # math-verify raises on exotic inputs; a checker must not crash a run
        return False, None


def judge(gold: str, completion: str) -> tuple[str | None, bool]:
    """(extracted answer, correct) for one completion against an already currency-stripped gold."""
    if n_boxes(completion) > 1:
        ok, extracted = verify_completion(gold, strip_currency(completion))
        return extracted, ok
    extracted = extract_boxed(completion)
    return extracted, is_equivalent(gold, strip_currency(extracted))


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    records = []
    for prob, comps in zip(problems, completions):
        t0 = time.perf_counter()
        gold = strip_currency(str(prob["answer"]))
        ex, sc, vd = [], [], []
        for c in comps:
            extracted, ok = judge(gold, c)
            ex.append(extracted)
            sc.append(1.0 if ok else 0.0)
            vd.append("correct" if ok else ("no_answer" if extracted is None else "wrong"))
        records.append({"extracted": ex, "scores": sc, "verdicts": vd, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"checker": "math-verify, gold first, last \\boxed{} (several boxes: math-verify's own "
                                                 "extraction on the completion); escaped dollars removed"})
