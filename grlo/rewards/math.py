"""The one math-answer checker, shared by evaluation scorers and RLVR rewards.

Answer extraction takes the last \\boxed{...} (balanced braces); equivalence is math-verify with the gold
answer first, as the field does: verify(parse(gold), parse(pred)).
"""

from __future__ import annotations

import threading
from functools import lru_cache

_BOX_MARKERS = ("\\boxed", "\\fbox")


def extract_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} in `text`, or None. Handles nested braces and `\\boxed 5`."""
    if not text:
        return None
    best = -1
    marker_len = 0
    for m in _BOX_MARKERS:
        i = text.rfind(m)
        if i > best:
            best, marker_len = i, len(m)
    if best < 0:
        return None
    i = best + marker_len
    if i < len(text) and text[i] == " ":  # `\boxed 5`: up to the next whitespace or `$`
        rest = text[i + 1 :]
        token = rest.split()[0] if rest.split() else ""
        return token.rstrip("$.") or None
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None  # unbalanced: the completion was cut off inside the box


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=4096)
def _parse(expr: str, main: bool):
    from math_verify import parse  # heavy: math_verify

    # math-verify times out with signal.alarm, which only works on the main thread.
    timeout = 5 if main else None
    return parse(f"${expr}$" if "$" not in expr else expr, parsing_timeout=timeout)


def is_equivalent(gold: str, pred: str | None) -> bool:
    """math-verify equivalence, gold first. Empty/None predictions are never correct."""
    if pred is None or not str(pred).strip():
        return False
    from math_verify import verify  # heavy: math_verify

    main = _on_main_thread()
    g, p = _parse(str(gold), main), _parse(str(pred), main)
    if not g or not p:
        return str(gold).strip() == str(pred).strip()
    try:
        return bool(verify(g, p, timeout_seconds=5 if main else None))
    except Exception:  # math-verify raises on exotic inputs; a checker must not crash a run
        return False


def grade(gold: str, completion: str) -> dict:
    """Extract the final boxed answer from a completion and check it against the gold answer."""
    extracted = extract_boxed(completion)
    return {"extracted": extracted, "correct": is_equivalent(gold, extracted)}
