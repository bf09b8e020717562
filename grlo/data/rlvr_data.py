"""`grlo download-rlvr-data`: the RLVR training set, normalised to {"id", "prompt", "answer", "meta"}.

paper: WebInstruct-verified (General-Reasoner's ~230K verifiable questions; inferred baseline, results/README.md),
hub dataset `rlvr.data.repo` at `rlvr.data.revision` (null = resolve the current commit once and record it in
stats.json), read from its parquet shards with huggingface_hub (imported lazily).
smoke: `fixture` problems generated offline by `generate_fixture` (seeded arithmetic, fractions, linear equations,
powers) with exact answers, some in LaTeX, so the shared math checker is exercised on both sides.

`rlvr.data.subset` keeps the first N rows after a seeded shuffle (N = null keeps all); the trainer can take a
further prefix per stage (rlvr.stages.<stage>.max_prompts).
"""

from __future__ import annotations

import collections
import logging
import random
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

from grlo import config as config_mod
from grlo.errors import GrloError
from grlo.io import iter_jsonl, sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)

# Column names tried in order: WebInstruct-verified uses question/answer; close variants use problem/unique_id.
QUESTION_KEYS = ("question", "problem", "prompt")
ANSWER_KEYS = ("answer", "final_answer", "ground_truth")
ID_KEYS = ("id", "unique_id")
META_KEYS = ("answer_type", "category", "difficulty", "source", "kind")


# --------------------------------------------------------------------------- normalisation


def _first(raw: dict, keys: Iterable[str]) -> Any:
    for k in keys:
        if raw.get(k) is not None:
            return raw[k]
    return None


def normalise_row(raw: dict, index: int, *, source: str, where: str) -> dict:
    """One raw record -> {"id", "prompt", "answer", "meta"}. `where` names the file/line for the error."""
    if not isinstance(raw, dict):
        raise GrloError("row is not an object", path=where)
    q = _first(raw, QUESTION_KEYS)
    if isinstance(q, list):  # a one-turn chat list (verl-style files)
        q = next((m.get("content") for m in q if isinstance(m, dict) and m.get("role") == "user"), None)
    if not isinstance(q, str) or not q.strip():
        raise GrloError(f"missing or empty question (one of {', '.join(QUESTION_KEYS)})", path=where)
    a = _first(raw, ANSWER_KEYS)
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        a = str(a)
    if not isinstance(a, str) or not a.strip():
        raise GrloError(f"missing or empty answer (one of {', '.join(ANSWER_KEYS)})", path=where)
    rid = _first(raw, ID_KEYS)
    meta = {k: raw[k] for k in META_KEYS if raw.get(k) is not None}
    meta.update(raw.get("meta") or {})
    meta["source"] = meta.get("source", source)
    return {"id": str(rid) if rid is not None else f"{source}-{index}", "prompt": q.strip(), "answer": a.strip(),
            "meta": meta}


def load_rows(path: str | Path) -> list[dict]:
    """Read a normalised RLVR JSONL (the trainer's input); any bad row is a one-line error with file and line."""
    rows, seen = [], set()
    for lineno, raw in iter_jsonl(path):
        where = f"{path}: line {lineno}"
        for key in ("id", "prompt", "answer"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise GrloError(f"field {key!r} must be a non-empty string", path=where)
        if "meta" in raw and not isinstance(raw["meta"], dict):
            raise GrloError("field 'meta' must be an object", path=where)
        if raw["id"] in seen:
            raise GrloError(f"duplicate id {raw['id']!r}", path=where)
        seen.add(raw["id"])
        rows.append(raw)
    if not rows:
        raise GrloError("no rows", path=str(path))
    return rows


# --------------------------------------------------------------------------- smoke fixture


def _latex(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    sign = "-" if x < 0 else ""
    return f"{sign}\\frac{{{abs(x.numerator)}}}{{{x.denominator}}}"


def generate_fixture(count: int, seed: int = 0) -> list[dict]:
    """Deterministic verifiable problems with exact answers (our own generator; same seed -> same rows)."""
    rng = random.Random(seed)
    kinds = ("add", "mul", "frac", "linear", "power")
    rows = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "add":
            a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(1, 50)
            q, ans = f"What is {a} + {b} - {c}?", str(a + b - c)
        elif kind == "mul":
            a, b = rng.randint(3, 19), rng.randint(3, 19)
            q, ans = f"Compute {a} \\times {b}.", str(a * b)
        elif kind == "frac":
            a, b = Fraction(rng.randint(1, 5), rng.randint(2, 9)), Fraction(rng.randint(1, 5), rng.randint(2, 9))
            q = f"What is {_latex(a)} + {_latex(b)}? Give the answer as a fraction in lowest terms."
            ans = _latex(a + b)
        elif kind == "linear":
            x, m = rng.randint(-9, 9), rng.randint(2, 7)
            c = rng.randint(-20, 20)
            q, ans = f"Solve for x: {m}x + ({c}) = {m * x + c}.", str(x)
        else:
            base, exp = rng.randint(2, 5), rng.randint(2, 4)
            q, ans = f"What is {base}^{{{exp}}}?", str(base**exp)
        rows.append({"id": f"fixture-{seed}-{i:04d}", "prompt": q, "answer": ans,
                     "meta": {"source": "fixture", "kind": kind}})
    return rows


# --------------------------------------------------------------------------- hub source (paper mode)


def _resolve_revision(repo: str, revision: str | None) -> str:
    from huggingface_hub import HfApi  # optional: huggingface_hub

    info = HfApi().dataset_info(repo, revision=revision)
    return info.sha


def read_hub_rows(repo: str, revision: str | None, split: str) -> tuple[Iterator[dict], str]:
    """(raw rows, resolved commit) from the dataset's parquet shards for `split`."""
    try:
        from huggingface_hub import snapshot_download  # optional: huggingface_hub
    except ImportError as e:  # pragma: no cover - huggingface_hub is a pinned dependency
        raise GrloError(f"huggingface_hub is needed for the hub source ({e})") from None
    import pyarrow.parquet as pq  # heavy: pyarrow

    sha = _resolve_revision(repo, revision)
    local = Path(snapshot_download(repo_id=repo, repo_type="dataset", revision=sha,
                                   allow_patterns=[f"*{split}*.parquet", f"**/{split}-*.parquet"]))
    files = sorted(p for p in local.rglob("*.parquet") if split in p.name)
    if not files:
        raise GrloError(f"no parquet shard for split {split!r} in {repo}@{sha}", field="rlvr.data.split")

    def rows():
        for f in files:
            yield from pq.read_table(f).to_pylist()

    return rows(), sha


# --------------------------------------------------------------------------- command


def _normalise_all(items, source: str, on_invalid: str, stats: dict) -> list[dict]:
    """Normalise (index, raw, where) items; on_invalid=drop counts bad rows in stats instead of failing."""
    rows = []
    for i, raw, where in items:
        try:
            rows.append(normalise_row(raw, i, source=source, where=where))
        except GrloError as e:
            if on_invalid != "drop":
                raise
            stats["invalid_dropped"] += 1
            if stats["invalid_dropped"] <= 5:
                log.warning("dropped invalid row: %s", e)
    return rows


def build(cfg: dict) -> tuple[list[dict], dict]:
    """Normalised rows and the stats record for the configured source."""
    dc = config_mod.get(cfg, "rlvr.data", {}) or {}
    source = dc.get("source", "hub")
    seed = int(dc.get("seed", cfg.get("seed", 0)))
    subset = dc.get("subset")
    on_invalid = dc.get("on_invalid", "error")
    stats: dict[str, Any] = {"source": source, "seed": seed, "subset": subset, "invalid_dropped": 0}
    if source == "fixture":
        fx = dc.get("fixture") or {}
        rows = generate_fixture(int(fx.get("count", 32)), int(fx.get("seed", seed)))
        stats["generator"] = "grlo.data.rlvr_data.generate_fixture"
    elif source == "hub":
        repo, split = dc.get("repo"), dc.get("split", "train")
        if not repo:
            raise GrloError("the hub source needs a dataset repo", field="rlvr.data.repo")
        raw_rows, sha = read_hub_rows(repo, dc.get("revision"), split)
        rows = _normalise_all(((i, r, f"{repo}@{sha[:12]}:{split} row {i}") for i, r in enumerate(raw_rows)),
                              repo, on_invalid, stats)
        stats.update(repo=repo, revision=sha, revision_requested=dc.get("revision"), split=split)
    elif source == "file":
        path = dc.get("path")
        if not path:
            raise GrloError("the file source needs a path", field="rlvr.data.path")
        rows = _normalise_all(((i, r, f"{path}: line {ln}") for i, (ln, r) in enumerate(iter_jsonl(path))),
                              Path(path).name, on_invalid, stats)
        stats.update(path=str(path), sha256=sha256_file(path))
    else:
        raise GrloError(f"unknown source {source!r} (hub, fixture, file)", field="rlvr.data.source")
    stats["available"] = len(rows)
    ids = collections.Counter(r["id"] for r in rows)
    dup = [k for k, n in ids.items() if n > 1]
    if dup:
        raise GrloError(f"duplicate id {dup[0]!r} in the {source} source", field="rlvr.data")
    random.Random(seed).shuffle(rows)  # a subset is a seeded random sample, not the head of the file
    if subset is not None:
        rows = rows[: int(subset)]
    stats["count"] = len(rows)
    for key in ("answer_type", "category", "difficulty", "kind"):
        c = collections.Counter(r["meta"].get(key) for r in rows if r["meta"].get(key) is not None)
        if c:
            stats[f"by_{key}"] = dict(sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    stats["mean_prompt_chars"] = round(sum(len(r["prompt"]) for r in rows) / max(1, len(rows)), 1)
    return rows, stats


def add_arguments(p) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, merged in order")
    p.add_argument("--output", required=True, help="normalised JSONL (data/rlvr/train.jsonl)")
    p.add_argument("--stats", required=True, help="stats JSON (data/rlvr/stats.json)")


def run(args) -> int:
    cfg = config_mod.load(args.config)
    rows, stats = build(cfg)
    if not rows:
        raise GrloError("the RLVR data source produced no rows", field="rlvr.data")
    write_jsonl(args.output, rows)
    stats["sha256"] = sha256_file(args.output)
    write_json(args.stats, stats)
    log.info("wrote %d RLVR rows to %s", len(rows), args.output)
    return 0
