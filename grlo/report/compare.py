"""`grlo compare RUN_A RUN_B`: per-benchmark differences (B - A) of two runs, with standard errors and a paired
bootstrap interval on the problems both scored.

RUN_A / RUN_B: a run's output directory (holding scores/), a scores/ directory, or one model's score directory
(scores/<model>/). Without --model-a/--model-b every model id present on both sides is compared with itself (the
same model in two runs: a code or protocol change); with them, the two named models (two checkpoints in one run).

Per benchmark: each side's value and standard error from its score summary; diff = B - A with the independent
standard error sqrt(se_a^2 + se_b^2); then, from the per-sample files (scores/<model>/<bench>.samples.jsonl), the
problems both sides scored: the paired mean difference of the per-problem mean scores, its paired standard error
sd(d)/sqrt(n) and a percentile bootstrap interval (problems resampled with replacement, --bootstrap draws, --seed).
A benchmark whose summary is not the mean of its sample scores (AlpacaEval's length-controlled win rate) is paired
on the sample scores and says so.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import iter_jsonl, read_json
from grlo.report.common import fmt, markdown_table, write_csv_md

COLUMNS = ["model_a", "model_b", "benchmark", "a", "a_stderr", "b", "b_stderr", "diff", "diff_stderr", "n_shared",
           "paired_diff", "paired_stderr", "ci_low", "ci_high", "ci_level", "note"]


def _summaries(d: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.glob("*.json")) if not p.name.endswith(".meta.json")}


def side(path: str | Path, model: str | None, label: str) -> dict[str, dict[str, Path]]:
    """{model: {benchmark: summary path}} of one side."""
    p = Path(path)
    if not p.is_dir():
        raise GrloError("not a directory (give a run outdir, its scores/ or scores/<model>/)", path=str(p), field=label)
    if (p / "scores").is_dir():
        p = p / "scores"
    subdirs = {d.name: _summaries(d) for d in sorted(p.iterdir()) if d.is_dir() and _summaries(d)}
    if subdirs:
        if model is None:
            return subdirs
        if model not in subdirs:
            raise GrloError(f"no scores for model {model!r} (has: {', '.join(subdirs)})", path=str(p), field=label)
        return {model: subdirs[model]}
    own = _summaries(p)
    if not own:
        raise GrloError("no score summaries (*.json) found", path=str(p), field=label)
    return {model or p.name: own}


def per_problem(summary: dict, summary_path: Path) -> dict[str, float]:
    """{problem id: mean sample score} from the summary's per-sample file (beside it when the recorded path moved)."""
    rec = Path(summary.get("samples") or "")
    beside = summary_path.with_name(summary_path.name[:-5] + ".samples.jsonl")
    path = rec if rec.name and rec.is_file() else beside
    if not path.is_file():
        raise GrloError("per-sample file not found (needed for the paired comparison)", path=str(beside))
    out = {}
    for lineno, row in iter_jsonl(path):
        scores = row.get("scores")
        if "id" not in row or not isinstance(scores, list) or not scores:
            raise GrloError("sample row needs 'id' and a non-empty 'scores' list", path=str(path), field=f"line {lineno}")
        out[str(row["id"])] = sum(float(x) for x in scores) / len(scores)
    return out


def paired(a: dict[str, float], b: dict[str, float], draws: int = 2000, seed: int = 0,
           level: float = 0.95) -> dict:
    """Paired difference (B - A, percent) on the shared problems with its standard error and bootstrap interval."""
    ids = sorted(set(a) & set(b))
    n = len(ids)
    if n == 0:
        return {"n_shared": 0, "paired_diff": None, "paired_stderr": None, "ci_low": None, "ci_high": None}
    d = [100.0 * (b[i] - a[i]) for i in ids]
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else None
    rng = random.Random(seed)
    boots = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws))
    lo_i = int(math.floor((1 - level) / 2 * (draws - 1)))
    hi_i = int(math.ceil((1 + level) / 2 * (draws - 1)))
    return {"n_shared": n, "paired_diff": mean, "paired_stderr": se, "ci_low": boots[lo_i], "ci_high": boots[hi_i]}


def compare(a: dict[str, dict[str, Path]], b: dict[str, dict[str, Path]], draws: int = 2000, seed: int = 0,
            level: float = 0.95) -> list[dict]:
    if len(a) == 1 and len(b) == 1:
        pairs = [(next(iter(a)), next(iter(b)))]
    else:
        pairs = [(m, m) for m in a if m in b]
        if not pairs:
            raise GrloError(f"no model is scored in both runs (A: {', '.join(a)}; B: {', '.join(b)}): name them with "
                            "--model-a/--model-b", field="RUN_B")
    rows = []
    for ma, mb in pairs:
        for bench in [x for x in a[ma] if x in b[mb]]:
            sa, sb = read_json(a[ma][bench]), read_json(b[mb][bench])
            va, vb, ea, eb = sa.get("value"), sb.get("value"), sa.get("stderr"), sb.get("stderr")
            pa, pb = per_problem(sa, a[ma][bench]), per_problem(sb, b[mb][bench])
            row = {"model_a": ma, "model_b": mb, "benchmark": bench, "a": va, "a_stderr": ea, "b": vb, "b_stderr": eb,
                   "diff": vb - va if None not in (va, vb) else None,
                   "diff_stderr": math.sqrt(ea ** 2 + eb ** 2) if None not in (ea, eb) else None,
                   "ci_level": level, "note": ""}
            row.update(paired(pa, pb, draws, seed, level))
            mean_a = 100.0 * sum(pa.values()) / len(pa) if pa else None
            if va is not None and mean_a is not None and abs(mean_a - va) > 1e-6 and len(pa) == sa.get("n", len(pa)):
                row["note"] = "paired on per-sample scores (the summary metric is not their mean)"
            rows.append(row)
    if not rows:
        raise GrloError("the two runs share no benchmark", field="RUN_B")
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="run outdir, its scores/ or scores/<model>/")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--model-a", help="model id on side A (default: every model present on both sides)")
    p.add_argument("--model-b", help="model id on side B")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--output", help="also write this CSV (and a .md beside it)")


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 100:
        raise GrloError("at least 100 bootstrap draws", field="--bootstrap")
    if not 0.5 <= args.level < 1:
        raise GrloError("the interval level must be in [0.5, 1)", field="--level")
    if args.output and not str(args.output).endswith(".csv"):
        raise GrloError("output must end in .csv", path=str(args.output), field="--output")
    rows = compare(side(args.run_a, args.model_a, "RUN_A"), side(args.run_b, args.model_b, "RUN_B"),
                   args.bootstrap, args.seed, args.level)
    show = ["model_a", "model_b", "benchmark", "a", "b", "diff", "diff_stderr", "n_shared", "paired_diff", "ci_low",
            "ci_high", "note"]
    print(f"B - A, percent points; paired {args.level:.0%} interval: percentile bootstrap over shared problems "
          f"({args.bootstrap} draws, seed {args.seed})")
    print(markdown_table(show, [[fmt(r[c], 2) for c in show] for r in rows]))
    if args.output:
        write_csv_md(args.output, [f"run_a: {args.run_a}", f"run_b: {args.run_b}"], COLUMNS, rows, md_digits=2,
                     title="Run comparison (B - A)")
    return 0
