"""List every key of a config YAML as a dotted path with its value and trailing comment (used to write and check
config/README.md: `python tools/config_keys.py config/config.yaml`)."""

from __future__ import annotations

import re
import sys

_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.\-]+):\s*(?P<value>[^#]*?)\s*(?:#\s*(?P<comment>.*))?$")


def keys(path: str) -> list[tuple[str, str, str]]:
    out, stack = [], []
    for raw in open(path, encoding="utf-8"):
        if not raw.strip() or raw.lstrip().startswith("#") or raw.lstrip().startswith("- "):
            continue
        m = _LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [m["key"]])
        stack.append((indent, m["key"]))
        out.append((dotted, m["value"], m["comment"] or ""))
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        for dotted, value, comment in keys(path):
            print(f"| `{dotted}` | `{value}` | {comment} |" if value else f"| `{dotted}` | | {comment} |")
