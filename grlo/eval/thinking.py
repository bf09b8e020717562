"""Thinking-mode completions: the <think>...</think> block is removed before scoring; its size is kept."""

from __future__ import annotations

import re

_CLOSE = "</think>"
_OPEN_RE = re.compile(r"^\s*<think>", re.S)


def split_think(text: str) -> tuple[str | None, str]:
    """(think text or None, answer text). The answer is what follows the LAST </think>.

    A completion with <think> but no </think> was cut off while thinking: it has no answer (""), as in Qwen's
    evaluation. A completion without any tag is returned unchanged (non-thinking models). Qwen3 templates that put
    the opening <think> in the prompt produce completions with only the closing tag; both forms are handled.
    """
    if text is None:
        return None, ""
    i = text.rfind(_CLOSE)
    if i >= 0:
        think = _OPEN_RE.sub("", text[:i], count=1)
        return think, text[i + len(_CLOSE):].lstrip()
    if _OPEN_RE.match(text):
        return _OPEN_RE.sub("", text, count=1), ""
    return None, text
