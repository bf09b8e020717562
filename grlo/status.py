"""`grlo status`: where a (long) run stands, read from what Snakemake and the trainers leave on disk.

    grlo status --config config/config.yaml [--directory RUN_DIR] [--gpus 8] [--dry-run]

  measured   GPU-hours so far per stage from the Snakemake benchmark TSVs and device records (grlo.accounting),
             beside the forecast's.
  jobs       done: Snakemake's per-output metadata (.snakemake/metadata/, one JSON per output with the rule, the job
             hash and start/end times), counted once per job whose outputs still exist; running: records marked
             incomplete. Left: with --dry-run, the job counts of `snakemake -n --quiet rules` (the DAG itself).
  training   each checkpoints/{backbone}/{stage}/metrics.jsonl (and RLVR's .metrics.partial.jsonl while it runs): the
             current step against the stage's step count, and the measured seconds per step (PPO: `time/step`;
             TRL: differences of `time_s`).
  ETA        the forecast (grlo forecast: GPU-hours per stage and model) of everything not finished, in wall hours
             on --gpus GPUs (default: the most any rule of the config asks for; jobs are assumed to keep them all
             busy), each training stage corrected by its measured/forecast seconds per step (the mean correction of
             measured stages for stages not started), and the running stage's remaining steps at its measured rate.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from grlo import config as _config
from grlo import workflow as W
from grlo.accounting import aggregate, collect_jobs
from grlo.doctor import rule_gpus as _rg
from grlo.io import iter_jsonl
from grlo.report import forecast
from grlo.report.common import load_config

PARTIAL = ".metrics.partial.jsonl"  # grlo.train.rlvr writes here while training, metrics.jsonl at the end


@dataclass
class Jobs:
    done: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # measured wall seconds of finished jobs per rule


def snakemake_jobs(run_dir: Path) -> Jobs:
    """Finished and running jobs per rule from .snakemake/metadata (outputs that no longer exist are ignored)."""
    meta = run_dir / ".snakemake" / "metadata"
    done: dict[str, dict[int, float]] = defaultdict(dict)
    running: dict[str, set] = defaultdict(set)
    for f in sorted(meta.glob("*")) if meta.is_dir() else []:
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            out = base64.urlsafe_b64decode(f.name.encode()).decode()
        except (ValueError, UnicodeDecodeError, OSError):
            continue  # not a record (Snakemake writes nothing else here; a half-written file is skipped)
        rule, job = rec.get("rule"), rec.get("job_hash")
        if not rule:
            continue
        if rec.get("incomplete"):
            running[rule].add(job)
        elif (run_dir / out).exists():
            start, end = rec.get("starttime"), rec.get("endtime")
            done[rule][job] = float(end - start) if start is not None and end is not None else 0.0
    return Jobs({r: len(j) for r, j in done.items()}, {r: len(j) for r, j in running.items()},
                {r: sum(j.values()) for r, j in done.items()})


def parse_job_stats(text: str) -> dict[str, int]:
    """The `job  count` table Snakemake prints for a dry run ('Job stats:'), without the total row."""
    out: dict[str, int] = {}
    if "Job stats:" not in text:
        return out
    for line in text.split("Job stats:", 1)[1].splitlines()[1:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            out[m.group(1)] = int(m.group(2))
        elif out and not line.strip():
            break
    return out


def jobs_left(config_files: list[str], run_dir: Path, timeout: int = 300) -> dict[str, int] | None:
    """Jobs a `snakemake -n` would still run, per rule (None when snakemake cannot tell)."""
    snakefile = _config.REPO_ROOT / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "-s", str(snakefile), "--directory",
           str(run_dir), "--configfile", *[str(Path(c).resolve()) for c in config_files]]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = r.stdout + r.stderr
    if r.returncode != 0:
        return None
    return parse_job_stats(text) if "Job stats:" in text else {}


@dataclass
class Training:
    backbone: str
    stage: str
    step: int
    total: int | None
    sec_per_step: float | None
    finished: bool


def seconds_per_step(rows: list[dict]) -> float | None:
    """Mean wall seconds per logged step: PPO logs time/step; TRL rows carry a running time_s."""
    per = [r["time/step"] for r in rows if isinstance(r.get("time/step"), (int, float))]
    if per:
        return sum(per) / len(per)
    pts = [(r["step"], r["time_s"]) for r in rows if isinstance(r.get("time_s"), (int, float))]
    if len(pts) >= 2 and pts[-1][0] > pts[0][0]:
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])
    if len(pts) == 1 and pts[0][0] > 0:
        return pts[0][1] / pts[0][0]
    return None


def training_runs(out: Path, planned: dict[tuple[str, str], int | None]) -> list[Training]:
    runs = []
    for (bb, stage), total in sorted(planned.items()):
        d = out / "checkpoints" / bb / stage
        finished = (d / "final").is_dir() and (d / "metrics.jsonl").is_file()
        path = d / "metrics.jsonl" if (d / "metrics.jsonl").is_file() else d / PARTIAL
        rows = [r for _, r in iter_jsonl(path) if isinstance(r.get("step"), int)] if path.is_file() else []
        step = max((r["step"] for r in rows), default=0)
        runs.append(Training(bb, stage, step, total, seconds_per_step(rows), finished))
    return runs


def forecast_rows(cfg: dict, out: Path | None = None) -> list[dict]:
    """The forecast of this run's own plan: the prepared prompts' count and mean length once they exist
    (data/prompts/{primary}/stats.json), else the prompt file the run will download (grlo.report.forecast)."""
    stats_file = out / "data" / "prompts" / str(_config.get(cfg, "backbones.primary")) / "stats.json" if out else None
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file and stats_file.is_file() else None
    rows, _ = forecast.plan(cfg, forecast.load_throughput(), stats)
    for r in rows:
        m = re.match(r"^(\d+) steps", r.get("detail", ""))
        r["steps"] = int(m.group(1)) if m else None
    return rows


def rule_gpus(cfg: dict) -> dict[str, int]:
    return {r: n or 0 for r, n in _rg(cfg).items()}


def stage_rule(stage: str) -> str:
    return "train_grlo" if stage == "grlo" else "train_rlvr"


def eta_hours(cfg: dict, out: Path, runs: list[Training], fc: list[dict], gpus: int) -> tuple[float, list[str]]:
    """Wall hours left on `gpus` GPUs, and how each part was counted."""
    gpr = rule_gpus(cfg)
    by_run = {(t.backbone, t.stage): t for t in runs}
    ratios, notes, left_gpu_h = [], [], 0.0
    pending_training = []
    for r in fc:
        if r["stage"] == "eval" or not r["gpu_hours"]:
            continue
        t = by_run.get((r["model"], r["stage"]))
        n_gpu = max(1, gpr.get(stage_rule(r["stage"]), 1))
        fc_sps = r["gpu_hours"] * 3600 / n_gpu / r["steps"] if r.get("steps") else None
        if t and t.finished:
            continue
        if t and t.sec_per_step and t.step:
            if fc_sps:
                ratios.append(t.sec_per_step / fc_sps)
            total = t.total or r.get("steps") or t.step
            hours = max(0, total - t.step) * t.sec_per_step / 3600 * n_gpu
            left_gpu_h += hours
            notes.append(f"{r['model']}/{r['stage']}: {total - t.step} steps x {t.sec_per_step:.1f} s measured")
        else:
            pending_training.append((r, n_gpu))
    corr = sum(ratios) / len(ratios) if ratios else 1.0
    for r, _ in pending_training:
        left_gpu_h += r["gpu_hours"] * corr
        notes.append(f"{r['model']}/{r['stage']}: forecast {r['gpu_hours']:.1f} GPU-h"
                     + (f" x {corr:.2f} (measured/forecast)" if ratios else ""))
    evals = [r for r in fc if r["stage"] == "eval" and not _generated(cfg, out, r["model"])]
    if evals:
        h = sum(r["gpu_hours"] for r in evals)
        left_gpu_h += h
        notes.append(f"{len(evals)} models to evaluate: forecast {h:.1f} GPU-h")
    return left_gpu_h / max(1, gpus), notes


def _generated(cfg: dict, out: Path, model: str) -> bool:
    return all((out / "generations" / model / f"{b}.jsonl").is_file() for b in W.benchmarks(cfg))


def planned_training(cfg: dict, fc: list[dict]) -> dict[tuple[str, str], int | None]:
    """(backbone, stage) -> planned steps for every training run the evaluated models need."""
    steps = {(r["model"], r["stage"]): r.get("steps") for r in fc if r["stage"] != "eval"}
    out = {}
    for m in W.eval_models(cfg):
        r = W.resolve_eval_model(cfg, m)
        if r["stage"]:
            out[(r["source"], r["stage"])] = steps.get((r["source"], r["stage"]))
            if r["stage"] == "grlo-rlvr":
                out[(r["source"], "grlo")] = steps.get((r["source"], "grlo"))
    return out


def measured_lines(benchmarks_dir: Path, fc: list[dict]) -> list[str]:
    """GPU-hours measured so far per stage (Snakemake benchmark TSVs + device records) beside the forecast."""
    rows = aggregate(collect_jobs(benchmarks_dir))
    if not rows:
        return ["measured: no finished job with a benchmark TSV yet"]
    by_stage: dict[str, dict] = {}
    for r in rows:
        d = by_stage.setdefault(r["stage"], {"jobs": 0, "wall": 0.0, "gpu": 0.0, "unrecorded": False})
        d["jobs"] += r["jobs"]
        d["wall"] += r["wall_hours"]
        d["gpu"] += r["gpu_hours"] or 0.0
        d["unrecorded"] |= r["gpu_hours"] is None
    planned: dict[str, float] = defaultdict(float)
    for r in fc:
        planned[r["stage"]] += r["gpu_hours"]
    lines = ["measured (benchmark TSVs):"]
    for stage, d in sorted(by_stage.items()):
        gpu = "GPU-h not recorded" if d["unrecorded"] and not d["gpu"] else f"{d['gpu']:.2f} GPU-h"
        fcs = f" of {planned[stage]:.2f} forecast" if stage in planned else ""
        lines.append(f"  {stage:<20} {d['jobs']:4d} jobs  {_hm(d['wall'])} wall  {gpu}{fcs}")
    return lines


def _hm(hours: float) -> str:
    m = round(hours * 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def report(cfg: dict, run_dir: Path, gpus: int | None, left: dict[str, int] | None) -> list[str]:
    out = run_dir / (W.prefix(cfg) or ".")
    jobs = snakemake_jobs(run_dir)
    lines = [f"run directory: {run_dir.resolve()} (outputs under {out.resolve()})"]
    rules = sorted(set(jobs.done) | set(jobs.running) | set(left or {}))
    total_done = sum(jobs.done.values())
    lines.append(f"jobs: {total_done} done, {sum(jobs.running.values())} running"
                 + (f", {sum(left.values())} left (snakemake -n)" if left is not None else
                    " (jobs left: add --dry-run)"))
    for r in rules:
        d, run, lf = jobs.done.get(r, 0), jobs.running.get(r, 0), (left or {}).get(r)
        secs = jobs.seconds.get(r, 0.0)
        lines.append(f"  {r:<20} done {d:4d}" + (f"  running {run}" if run else "")
                     + (f"  left {lf:4d}" if lf is not None else "") + (f"  ({_hm(secs / 3600)} measured)" if d else ""))
    fc = forecast_rows(cfg, out)
    runs = training_runs(out, planned_training(cfg, fc))
    lines.append("training:")
    for t in runs:
        state = "finished" if t.finished else "running" if t.step else "not started"
        total = f"/{t.total}" if t.total else ""
        rate = f", {t.sec_per_step:.1f} s/step measured" if t.sec_per_step else ""
        lines.append(f"  {t.backbone}/{t.stage}: step {t.step}{total} ({state}{rate})")
    if not runs:
        lines.append("  none: this config trains nothing")
    lines += measured_lines(out / "benchmarks", fc)
    n = gpus or max(rule_gpus(cfg).values() or [1]) or 1
    hours, notes = eta_hours(cfg, out, runs, fc, n)
    lines.append(f"ETA: {_hm(hours)} on {n} GPU(s)" + (" (smoke: forecast of paper-size models, not of this run)"
                                                        if cfg.get("mode") == "smoke" else ""))
    lines += [f"  - {x}" for x in notes]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True, help="the run's config file(s), as given to snakemake")
    p.add_argument("--directory", default=".", help="the run's working directory (snakemake --directory)")
    p.add_argument("--gpus", type=int, help="GPUs the run uses (default: the most any rule asks for)")
    p.add_argument("--dry-run", action="store_true", help="also count the jobs left with `snakemake -n` (slower)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    run_dir = Path(args.directory)
    left = jobs_left(args.config, run_dir) if args.dry_run else None
    for line in report(cfg, run_dir, args.gpus, left):
        print(line)
    return 0
