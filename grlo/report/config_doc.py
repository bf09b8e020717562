"""Write config/README.md from config/config.yaml and config/smoke.yaml: every key, its paper and smoke value and
the comment that documents it (the YAML comments are the single source; this only lays them out).

    python -m grlo.report.config_doc > config/README.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

from grlo.config import REPO_ROOT, SCHEMA_PATH

KEY = re.compile(r"^(\s*)([A-Za-z0-9_.\-]+):(.*)$")

HEAD = """# Configuration

`config/config.yaml` is paper mode (the default); `config/smoke.yaml` overlays it for smoke mode (CPU, offline,
minutes). Files are deep-merged in order (`--configfile config/config.yaml config/smoke.yaml`, or `grlo <cmd>
--config A.yaml B.yaml`) and validated against `workflow/schemas/config.schema.yaml`: an unknown key or a wrong value
is a one-line error naming the key. Add your own overlay for a variant (e.g. `container.image`, fewer benchmarks).

Benchmarks and models are declared in `grlo/registry/benchmarks.yaml` and `grlo/registry/models.yaml`; the GPU
throughput table of the forecast is `grlo/report/throughput.yaml`; GPU runs: `docs/gpu.md`.

This file is generated from the comments in the two YAML files: `python -m grlo.report.config_doc > config/README.md`.
"""


def comments(path: Path) -> dict[str, str]:
    """{dotted key: comment} from trailing `# ...` comments and the full-line comments just above a key."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    seen_key = False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not seen_key:  # the file's own header, not a key's documentation
                continue
            pending.append(stripped.lstrip("#").strip())
            continue
        m = KEY.match(line)
        if not m or stripped.startswith("-"):
            if not stripped:
                pending = []
            continue
        seen_key = True
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        trailing = ""
        if "#" in rest:
            value_part, _, trailing = rest.partition(" #")
            trailing = trailing.strip().lstrip("#").strip()
        text = " ".join(pending + ([trailing] if trailing else []))
        pending = []
        if text:
            out[dotted] = text
    return out


def schema_descriptions() -> dict[str, str]:
    """{dotted key: description} from workflow/schemas/config.schema.yaml (fallback documentation)."""
    out: dict[str, str] = {}

    def walk(node: dict, prefix: str) -> None:
        for k, v in (node.get("properties") or {}).items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                if v.get("description"):
                    out[key] = v["description"]
                walk(v, key)

    walk(yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8")), "")
    return out


def leaves(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        keys = []
        if prefix:
            keys.append(prefix)
        for k, v in node.items():
            keys += leaves(v, f"{prefix}.{k}" if prefix else str(k))
        return keys
    return [prefix]


def get(node, dotted: str):
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "—"
        node = node[part]
    return node


def show(v) -> str:
    if v == "—":
        return ""
    if v == "(unset)":
        return "unset (default)"
    if isinstance(v, dict):
        return "" if v else "`{}`"
    return "`" + json.dumps(v, ensure_ascii=False).replace("|", "\\|") + "`"  # a | would end the table cell


def render(config_path: Path, smoke_path: Path) -> str:
    paper = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    smoke = yaml.safe_load(smoke_path.read_text(encoding="utf-8"))
    notes = {**schema_descriptions(), **comments(config_path)}
    smoke_notes = comments(smoke_path)
    lines = [HEAD]
    for top in paper:
        lines += [f"## `{top}`", "", "| key | paper (config.yaml) | smoke (smoke.yaml) | meaning |", "|---|---|---|---|"]
        keys = leaves(paper[top], top) if isinstance(paper[top], dict) else [top]
        if isinstance(paper[top], dict) and isinstance(smoke.get(top), dict):  # keys only smoke.yaml sets
            keys += [f"{top}.{k}" for k in smoke[top] if k not in paper[top]]
        for key in keys:
            pv, sv = get(paper, key), get(smoke, key)
            if pv == "—":
                pv = "(unset)"
            meaning = notes.get(key, "")
            if key in smoke_notes and smoke_notes[key] != meaning:
                meaning += (" " if meaning else "") + f"(smoke: {smoke_notes[key]})"
            lines.append(f"| `{key}` | {show(pv)} | {show(sv) if sv != '—' else 'same'} | "
                         f"{meaning.replace('|', '/')} |")
        lines.append("")
    extra = [k for k in smoke if k not in paper]
    if extra:
        lines += ["## Smoke-only keys", ""] + [f"- `{k}`" for k in extra] + [""]
    return "\n".join(lines)


def main() -> int:
    sys.stdout.write(render(REPO_ROOT / "config" / "config.yaml", REPO_ROOT / "config" / "smoke.yaml"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
