"""Shared pieces of the reports: header block, score loading, model naming, CSV/Markdown writers.

Every CSV written by `grlo table|claims|forecast|gpu-hours` starts with `# key: value` comment lines (mode, config
hash, date, notes) followed by an ordinary CSV; read it with `pandas.read_csv(path, comment="#")`. The Markdown twin
shows the same header as a block quote.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from grlo import config as _config
from grlo import __version__, registry
from grlo.errors import GrloError
from grlo.eval.metrics import domain_averages, overall_averages  # the one definition
from grlo.eval.reference import REFERENCE_LABEL, REFERENCE_MODEL
from grlo.io import atomic_path, read_json, write_text

SCORE_REQUIRED = ("benchmark", "model", "value", "domain")
DOMAIN_ORDER = ("math", "science", "code", "chat")


def git_commit() -> str | None:
    """Short commit of the code, '+dirty' when tracked files differ from it; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=_config.REPO_ROOT, capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "grlo"],
                               cwd=_config.REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def header_lines(cfg: dict, *notes: str, date: str | None = None) -> list[str]:
    """mode, config hash, date (UTC), code commit, then free notes: the provenance of every results file."""
    mode = cfg.get("mode", "paper")
    lines = [
        f"mode: {mode}" + (" (smoke run: tiny models and data; numbers are NOT comparable to the paper)"
                           if mode == "smoke" else ""),
        f"config_hash: {_config.config_hash(cfg)}",
        f"date: {date or _dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"code: grlo {__version__} @ {git_commit() or 'unknown commit'}",
    ]
    lines += [f"note: {n}" for n in notes if n]
    return lines


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if v == v else ""
    return str(v)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def write_csv_md(path: str | os.PathLike, header: list[str], columns: Sequence[str], rows: Sequence[dict],
                 md_columns: Sequence[str] | None = None, md_digits: int = 1, title: str = "",
                 footer: Sequence[str] = (), md_headers: dict | None = None,
                 md_empty: dict | None = None) -> tuple[Path, Path]:
    """Write `path` (.csv, with `#` header lines) and its Markdown twin (.md) atomically.

    `md_empty` {column: text} names what an empty cell means in the Markdown (e.g. "not run"); the CSV keeps it empty.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        for line in header:
            f.write(f"# {line}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([fmt(r.get(c)) for c in columns])
    md_cols = list(md_columns or columns)
    md = []
    if title:
        md += [f"## {title}", ""]
    md += [f"> {h}  " for h in header] + [""]
    names = [(md_headers or {}).get(c, c) for c in md_cols]
    empty = md_empty or {}
    md.append(markdown_table(names, [[fmt(r.get(c), md_digits) if r.get(c) is not None else empty.get(c, "")
                                      for c in md_cols] for r in rows]))
    if footer:
        md += [""] + [f"- {x}" for x in footer]
    md_path = path.with_suffix(".md")
    write_text(md_path, "\n".join(md) + "\n")
    return path, md_path


# ------------------------------------------------------------------------------------------------------------ scores
def load_scores(files: Iterable[str | os.PathLike] = (), directory: str | os.PathLike | None = None) -> dict:
    """{(model, benchmark): summary} from score summary JSONs; a file missing a required field is a GrloError."""
    paths = [Path(p) for p in files]
    if directory:
        d = Path(directory)
        paths += sorted(p for p in d.glob("*/*.json") if not p.name.endswith(".meta.json"))
    out: dict[tuple[str, str], dict] = {}
    for p in paths:
        s = read_json(p)
        if not isinstance(s, dict):
            raise GrloError("score summary must be a JSON object", path=str(p))
        for key in SCORE_REQUIRED:
            if key not in s:
                raise GrloError(f"missing {key!r}", path=str(p), field=key)
        if s["value"] is not None and not isinstance(s["value"], (int, float)):
            raise GrloError(f"value {s['value']!r} is not a number", path=str(p), field="value")
        key = (str(s["model"]), str(s["benchmark"]))
        if key in out:
            raise GrloError(f"two score files for model {key[0]} on {key[1]}", path=str(p))
        s = dict(s, _path=str(p))
        out[key] = s
    return out


def bench_info(name: str, scores: dict) -> dict:
    """label and domain of a benchmark: from any score file for it, else from the registry."""
    for (_, b), s in scores.items():
        if b == name:
            return {"label": s.get("label") or name, "domain": s["domain"]}
    try:
        entry = registry.benchmark(name)
        return {"label": entry.get("label", name), "domain": entry.get("domain")}
    except GrloError:
        return {"label": name, "domain": None}


def stand_in(source: str, mode: str) -> str | None:
    """The model that actually runs for registry model `source` in `mode` when it is another one (smoke mode runs
    SmolLM2-135M-Instruct for every backbone): its name, from the source's `label`, hub repo or weight file."""
    if mode == "paper":
        return None
    try:
        entry = registry.model(source)
        src = registry.source(entry, mode, source)
    except GrloError:
        return None
    if entry.get("role") == "custom":
        return None
    name = (src.get("label") or (src.get("repo") or "").rsplit("/", 1)[-1]
            or Path(src.get("file") or "").name.split(".")[0] or None)
    return name if name and name != entry.get("label", source) else None


def model_label(model_id: str, mode: str = "paper") -> str:
    """'qwen3-4b-base--grlo' -> 'Qwen3-4B-Base + GRLO'; 'qwen3-4b--thinking' -> 'Qwen3-4B (thinking)'.

    Outside paper mode the model that actually ran is named first: 'SmolLM2-135M-Instruct for Qwen3-4B-Base + GRLO'.
    """
    if model_id == REFERENCE_MODEL:
        return REFERENCE_LABEL
    source, _, variant = model_id.partition("--")
    try:
        label = registry.model(source).get("label", source)
    except GrloError:
        label = source
    ran = stand_in(source, mode)
    if ran:
        label = f"{ran} for {label}"
    if variant in ("base", "", "custom"):
        return label
    if variant in ("grlo", "rlvr", "grlo-rlvr"):
        return f"{label} + {variant.upper().replace('GRLO-RLVR', 'GRLO -> RLVR')}"
    return f"{label} ({variant.replace('nonthinking', 'non-thinking')})"


def averages(model: str, benchmarks: Sequence[str], scores: dict) -> dict:
    """Domain and overall averages (grlo.eval.metrics.domain_averages: macro over domains) for one model.

    A domain average is given only when every configured benchmark of that domain has a value, and the overall
    average only when every domain is complete: an average over a subset would be a different quantity, so a
    missing cell leaves the averages that depend on it empty instead of silently changing their meaning.
    Beside the domain keys and "overall": "overall_stderr", "mean_benchmarks" (unweighted over benchmarks) and
    "mean_benchmarks_stderr" (grlo.eval.metrics.overall_averages), under the same completeness rule.
    """
    present, complete = [], {}
    for b in benchmarks:
        dom = bench_info(b, scores)["domain"]
        s = scores.get((model, b))
        ok = s is not None and s.get("value") is not None
        complete[dom] = complete.get(dom, True) and ok
        if ok:
            present.append(s)
    avg = domain_averages(present) if present else {"overall": None}
    out = {d: (avg.get(d) if complete.get(d) else None) for d in DOMAIN_ORDER if d in complete}
    full = bool(complete) and all(complete.values())
    out["overall"] = avg.get("overall") if full else None
    over = overall_averages(present) if full else {}
    for key in ("overall_stderr", "mean_benchmarks", "mean_benchmarks_stderr"):
        out[key] = over.get(key)
    return out


def load_config(paths: Sequence[str]) -> dict:
    if not paths:
        raise GrloError("at least one --config file is needed", field="--config")
    first = Path(paths[0])
    if first.is_file() and first.resolve() != (_config.REPO_ROOT / "config" / "config.yaml").resolve():
        try:
            top = yaml.safe_load(first.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            top = None  # config.load names the file, line and column
        # a base config holds every required top-level section; an overlay (smoke, pilot, headline) only some
        if isinstance(top, dict) and not {"reward_model", "prompts", "generation", "resources"} <= set(top):
            raise GrloError(f"{first.name} is an overlay (use --config config/config.yaml {paths[0]})",
                            path=str(first), field="--config")
    return _config.load(paths)


def training_deviations(manifest: str | os.PathLike | None) -> list[str]:
    """What a training run changed from its configuration, from its final/manifest.json: the batch sizes adapted to
    the prompt count (grlo.train.batching, `batch_sizes.adapted`) and the verl launcher's declared deviations
    (`deviations` {key: reason}). [] when no manifest is given or it does not exist yet."""
    if not manifest or not Path(manifest).is_file():
        return []
    m = read_json(manifest)
    out = []
    adapted = (m.get("batch_sizes") or {}).get("adapted") or {}
    if adapted:
        out.append("batch adapted to the prompt count: " + ", ".join(
            f"{k} {v[0]} -> {v[1]}" if isinstance(v, (list, tuple)) and len(v) == 2 else f"{k} {v}"
            for k, v in adapted.items()))
    out += [f"verl {k}: {why}" for k, why in (m.get("deviations") or {}).items()]
    return out


def read_count(path: str | os.PathLike | None) -> int | None:
    """`count` from a stats JSON (data/prompts/stats.json, data/rlvr/stats.json); None when no path is given."""
    if not path:
        return None
    stats = read_json(path)
    if "count" not in stats or not isinstance(stats["count"], int):
        raise GrloError("needs an integer 'count'", path=str(path), field="count")
    return stats["count"]


def read_results_csv(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """(header lines, rows) of a CSV written by write_csv_md."""
    header, body = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for line in f:
            if line.startswith("# "):
                header.append(line[2:].rstrip("\n"))
            else:
                body.append(line)
    return header, list(csv.DictReader(body))
