"""Compare two smoke output directories' tables, scores and claims (the check for a change that must not move a
number, e.g. a refactor): `python tests/compare_smoke_outputs.py OUT_A OUT_B` exits 1 and lists the files that differ.

Equal means equal after removing what differs between two runs by nature: the provenance header lines (date, code
commit, config hash: the hash covers `outdir`), the output directory's own path, and wall-clock fields (JSON keys
naming a time, the `cpu_hours`/`wall_hours` columns of the cost tables; the GPU-hours files and the figures' cost points are
measured time through and through, listed apart). Rendered files (png, html) are built from the compared ones."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

HEADER = re.compile(r"^(#|>|<!--)?\s*(config_hash|date|code)[:=].*$", re.M)
VOLATILE_KEY = re.compile(r"time|seconds|date|elapsed|wall|cpu_hours|duration")
MEASURED_TIME = ("results/gpu_hours.csv", "results/gpu_hours.md", "results/gpu_hours_jobs.csv",
                 "results/figures/figures.json")
TIME_COLUMNS = ("cpu_hours", "wall_hours")


def _json(o):
    if isinstance(o, dict):
        return {k: _json(v) for k, v in o.items() if not VOLATILE_KEY.search(k)}
    return [_json(v) for v in o] if isinstance(o, list) else o


def _without_time(text: str, sep: str) -> str:
    """A CSV (sep ",") or Markdown table (sep "|") less its time columns (rows of the header's width)."""
    lines = text.splitlines()
    rows = list(csv.reader(lines)) if sep == "," else [line.split(sep) for line in lines]
    head = next((r for r in rows if len(r) > 1 and any(c.strip() in TIME_COLUMNS for c in r)), [])
    drop = {i for i, c in enumerate(head) if c.strip() in TIME_COLUMNS}
    return "\n".join(sep.join(c for i, c in enumerate(r) if i not in drop or len(r) != len(head)) for r in rows)


def normalised(path: Path, root: Path) -> str:
    text = HEADER.sub("", path.read_text(errors="replace").replace(str(root), "OUT"))
    if path.suffix == ".json":
        return json.dumps(_json(json.loads(text)), sort_keys=True)
    if path.suffix == ".jsonl":
        return "\n".join(json.dumps(_json(json.loads(x)), sort_keys=True) for x in text.splitlines() if x.strip())
    return _without_time(text, "," if path.suffix == ".csv" else "|")


def compare(a: Path, b: Path) -> dict:
    out = {"equal": [], "differ": [], "measured_time": [], "rendered": []}
    for sub in ("results", "scores"):
        for fa in sorted(p for p in (a / sub).rglob("*") if p.is_file()):
            rel = str(fa.relative_to(a))
            fb = b / rel
            if rel in MEASURED_TIME:
                out["measured_time"].append(rel)
            elif fa.suffix in (".png", ".html", ".zip"):
                out["rendered"].append(rel)
            elif fb.exists() and (fa.read_bytes() == fb.read_bytes() or normalised(fa, a) == normalised(fb, b)):
                out["equal"].append(rel)
            else:
                out["differ"].append(rel)
        out["differ"] += [str(p.relative_to(b)) for p in (b / sub).rglob("*") if p.is_file()
                          and not (a / p.relative_to(b)).exists()]
    return out


if __name__ == "__main__":
    r = compare(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
    print(f"equal: {len(r['equal'])}, measured time only: {len(r['measured_time'])}, rendered: {len(r['rendered'])}, "
          f"differ: {len(r['differ'])}")
    for rel in r["differ"]:
        print(f"differs: {rel}")
    sys.exit(1 if r["differ"] else 0)
