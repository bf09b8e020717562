"""LaTeX in problem text as MathML, rendered by the browser itself (no script, no network, no font download).

`to_html(text)`: the text HTML-escaped, each math span converted by the `latex2mathml` package (PyPI, pinned):
$...$ and \\(...\\) inline, $$...$$ and \\[...\\] as display math. A span the converter rejects stays as its escaped
LaTeX source, so nothing is ever lost; text without math comes back escaped and otherwise unchanged.
"""

from __future__ import annotations

import html
import re

# $$..$$ and \[..\] first (display), then \(..\) and $..$ (inline; a $ followed by a digit and a space is money)
MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)", re.S)


def _convert(latex: str, display: bool) -> str | None:
    try:
        from latex2mathml.converter import convert  # optional: latex2mathml

        return convert(latex, display="block" if display else "inline")
    except Exception:  # the converter's own errors for LaTeX it does not know: keep the source
        return None


def to_html(text: str) -> str:
    out, pos = [], 0
    for m in MATH.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        display = m.group(1) is not None or m.group(2) is not None
        latex = next(g for g in m.groups() if g is not None)
        got = _convert(latex.strip(), display)
        out.append(got if got else html.escape(m.group(0)))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def has_math(text: str) -> bool:
    return bool(MATH.search(text or ""))
