"""`grlo figures`: matplotlib PNGs (Agg backend) for the report.

  training_{backbone}_{stage}.png  one per metrics.jsonl: reward, response length, value loss, KL, entropy, clip
                                   fraction, truncation rate, gradient norms (actor, critic) and reward components
                                   vs step (a panel whose quantity the run did not log says so; GRPO has no value
                                   loss or critic)
  accuracy.png                     score per benchmark per model (grouped bars, stderr as error bars)
  cost_vs_accuracy.png             overall average vs training GPU-hours (measured; the public RLVR checkpoint at its
                                   reported, inferred cost), with the paper's two points from the abstract; a
                                   CPU-only run (smoke) is drawn against CPU-hours, without the paper's points
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

from grlo import config as _config
from grlo.accounting import collect_jobs, stage_gpu_hours
from grlo.errors import GrloError
from grlo.io import atomic_path, iter_jsonl, write_json
from grlo.report import common
from grlo.report.common import averages, bench_info, model_label
from grlo.report.paper_refs import PaperRefs

# panel -> metric names, first present wins (PPO trainer names, then TRL GRPO names)
PANELS = {
    "reward": ["reward/score_mean", "reward_mean", "reward", "rewards/mean"],
    "response length": ["response_length/mean", "completion_length_mean", "completions/mean_length"],
    "value loss": ["critic/vf_loss", "value_loss"],
    "KL": ["actor/ppo_kl", "kl", "actor/kl"],
    "entropy": ["actor/entropy", "entropy"],
    # PPO: fraction of response tokens whose ratio was clipped; TRL GRPO: clip_ratio/region_mean (either bound)
    "clip fraction": ["actor/pg_clipfrac", "clip_ratio/region_mean"],
    # responses cut at the max length: PPO response_length/clip_ratio, TRL completions/clipped_ratio
    "truncation rate": ["response_length/clip_ratio", "completions/clipped_ratio"],
}
# panels with several lines: line label -> metric names (first present wins)
MULTI_PANELS = {
    "gradient norm": {"actor": ["actor/grad_norm", "grad_norm"], "critic": ["critic/grad_norm"]},
}
# reward components: the PPO style_mix parts (reward/{part}_mean besides the total reward/score_mean) and TRL's
# per-function rewards (rewards/{function}/mean)
COMPONENT = re.compile(r"^reward/(?!score_mean$)(?P<a>.+)_mean$|^rewards/(?P<b>.+)/mean$")


def _plt():
    import matplotlib  # heavy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: matplotlib

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    rows = [r for _, r in iter_jsonl(path)]
    for i, r in enumerate(rows):
        if "step" not in r:
            raise GrloError("row without 'step'", path=str(path), field=f"row {i + 1}")
    return rows


def series(rows: list[dict], names: list[str]) -> tuple[str | None, list[float], list[float]]:
    """(name used, steps, values) for the first of `names` that the run logged."""
    for name in names:
        pts = [(r["step"], r[name]) for r in rows
               if isinstance(r.get(name), (int, float)) and math.isfinite(r[name])]
        if pts:
            return name, [p[0] for p in pts], [p[1] for p in pts]
    return None, [], []


def run_name(metrics_path: Path) -> tuple[str, str]:
    """checkpoints/{backbone}/{stage}/metrics.jsonl -> (backbone, stage)."""
    return metrics_path.parent.parent.name, metrics_path.parent.name


def reward_components(rows: list[dict]) -> dict[str, str]:
    """{label: metric name} of every reward component the run logged, in first-seen order."""
    out: dict[str, str] = {}
    for r in rows:
        for k in r:
            m = COMPONENT.match(k)
            if m and isinstance(r[k], (int, float)):
                out.setdefault(m.group("a") or m.group("b"), k)
    return out


def _not_logged(ax) -> None:
    ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")


def _lines(ax, rows: list[dict], lines: dict[str, list[str]]) -> list[str]:
    used = []
    for label, names in lines.items():
        name, x, y = series(rows, names)
        if name:
            ax.plot(x, y, marker="o" if len(x) < 30 else None, ms=3, label=label)
            used.append(name)
    if used:
        ax.legend(fontsize=7)
    else:
        _not_logged(ax)
    return used


def training_figure(metrics_path: Path, out: Path, title_suffix: str = "") -> dict:
    plt = _plt()
    rows = read_metrics(metrics_path)
    backbone, stage = run_name(metrics_path)
    n = len(PANELS) + len(MULTI_PANELS) + 1
    cols = 5
    fig, grid = plt.subplots(math.ceil(n / cols), cols, figsize=(4 * cols, 3.2 * math.ceil(n / cols)), squeeze=False)
    axes = list(grid.flat)
    used: dict = {}
    for ax, (panel, names) in zip(axes, PANELS.items()):
        name, x, y = series(rows, names)
        used[panel] = name
        ax.set_title(panel)
        ax.set_xlabel("step")
        if name is None:
            _not_logged(ax)
            continue
        ax.plot(x, y, marker="o" if len(x) < 30 else None, ms=3)
        ax.set_ylabel(name, fontsize=8)
    rest = axes[len(PANELS):]
    for ax, (panel, lines) in zip(rest, MULTI_PANELS.items()):
        ax.set_title(panel)
        ax.set_xlabel("step")
        used[panel] = _lines(ax, rows, lines) or None
    ax = rest[len(MULTI_PANELS)]
    ax.set_title("reward components")
    ax.set_xlabel("step")
    comps = reward_components(rows)
    used["reward components"] = _lines(ax, rows, {k: [v] for k, v in comps.items()}) or None
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{backbone} / {stage}: {len(rows)} logged steps{title_suffix}", y=1.02)
    fig.tight_layout()
    _save(fig, out)
    return {"run": f"{backbone}/{stage}", "metrics": str(metrics_path), "png": str(out), "series": used}


def accuracy_figure(cfg: dict, scores: dict, out: Path, title_suffix: str = "") -> None:
    plt = _plt()
    benches = list(_config.get(cfg, "evaluation.benchmarks", []) or [])
    models = sorted({m for (m, _) in scores}, key=lambda m: (m.partition("--")[0], m))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(benches) * max(1, len(models)) / 3), 4))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        xs, ys, es = [], [], []
        for j, b in enumerate(benches):
            s = scores.get((m, b))
            if s is None or s.get("value") is None:
                continue  # missing: no bar, never a zero
            xs.append(j + (i - (len(models) - 1) / 2) * width)
            ys.append(s["value"])
            es.append(s.get("stderr") or 0.0)
        ax.bar(xs, ys, width, yerr=es, label=model_label(m), capsize=2)
    ax.set_xticks(range(len(benches)), [bench_info(b, scores)["label"] for b in benches], rotation=30, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Accuracy per benchmark" + title_suffix)
    if models:
        ax.legend(fontsize=7, ncol=2)
    _save(fig, out)


def cost_points(cfg: dict, scores: dict, jobs: list, refs: PaperRefs) -> list[dict]:
    """(label, training GPU-hours and CPU-hours, overall average, kind) for the primary backbone's variants,
    plus the paper's two points."""
    primary = _config.get(cfg, "backbones.primary")
    benches = list(_config.get(cfg, "evaluation.benchmarks", []) or [])

    def hours(*stages: str) -> tuple[float | None, float | None]:
        gs = [stage_gpu_hours(jobs, s, primary) for s in stages]
        if any(g is None for g in gs):
            return None, None
        gpu = None if any(g["gpu_hours"] is None for g in gs) else sum(g["gpu_hours"] for g in gs)
        return gpu, sum(g["cpu_hours"] for g in gs)

    base_cost = refs.by_source["baseline"]["rlvr_gpu_hours"].value
    costs = {"base": ((0.0, 0.0), "measured"), "grlo": (hours("grlo"), "measured")}
    if _config.get(cfg, "rlvr.mode", "checkpoint") == "train":
        costs["rlvr"] = (hours("rlvr"), "measured")
    else:
        costs["rlvr"] = ((base_cost, None), "reported (inferred)")
    costs["grlo-rlvr"] = (hours("grlo", "grlo-rlvr"), "measured")
    pts = []
    for v, ((gpu, cpu), kind) in costs.items():
        acc = averages(f"{primary}--{v}", benches, scores).get("overall") if benches else None
        if gpu is not None and acc is not None:
            pts.append({"label": model_label(f"{primary}--{v}"), "gpu_hours": gpu, "cpu_hours": cpu,
                        "overall": acc, "kind": kind})
    ab = refs.by_source["abstract"]
    pts.append({"label": "paper: base", "gpu_hours": 0.0, "cpu_hours": None, "overall": ab["avg_base"].value,
                "kind": "paper"})
    pts.append({"label": "paper: GRLO", "gpu_hours": ab["grlo_gpu_hours"].value, "cpu_hours": None,
                "overall": ab["avg_grlo"].value, "kind": "paper"})
    return pts


def cost_figure(points: list[dict], out: Path, title_suffix: str = "") -> str:
    """Draw the points; returns the x quantity. A CPU-only run (every measured point at 0 GPU-hours) is drawn
    against CPU-hours without the paper's points, whose unit (GPU-hours) would not match."""
    plt = _plt()
    measured = [p for p in points if p["kind"] == "measured" and p["label"] and p.get("cpu_hours") is not None]
    cpu_run = bool(measured) and all(p["gpu_hours"] == 0 for p in measured) and any(p["cpu_hours"] for p in measured)
    x_key = "cpu_hours" if cpu_run else "gpu_hours"
    shown = [p for p in points if p.get(x_key) is not None and (not cpu_run or p["kind"] == "measured")]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    style = {"measured": "o", "reported (inferred)": "s", "paper": "*"}
    for i, p in enumerate(shown):
        x = max(p[x_key], 1e-3)
        ax.scatter([x], [p["overall"]], marker=style.get(p["kind"], "o"), s=80 if p["kind"] == "paper" else 40)
        # staggered labels: several runs can share a point (e.g. equal scores in smoke mode)
        ax.annotate(f"{p['label']} ({p['kind']})", (x, p["overall"]), fontsize=7, xytext=(5, 4 + 9 * (i % 4)),
                    textcoords="offset points")
    ax.set_xscale("log")
    unit = "CPU-hours (CPU-only run)" if cpu_run else "GPU-hours"
    ax.set_xlabel(f"training {unit} (log; 0 drawn at 0.001)")
    ax.set_ylabel("overall average (%)")
    ax.set_title("Cost vs accuracy" + title_suffix)
    _save(fig, out)
    return x_key


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--metrics", nargs="*", default=[], help="checkpoints/{backbone}/{stage}/metrics.jsonl files")
    p.add_argument("--scores", nargs="*", default=[])
    p.add_argument("--scores-dir")
    p.add_argument("--benchmarks-dir", help="benchmarks/ (measured GPU-hours for cost vs accuracy)")
    p.add_argument("--paper-refs")
    p.add_argument("--output-dir", required=True, help="results/figures/")


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args.config)
    out = Path(args.output_dir)
    suffix = " [smoke run: not comparable]" if cfg.get("mode") == "smoke" else ""
    index = {"header": common.header_lines(cfg), "training": []}
    for m in args.metrics:
        backbone, stage = run_name(Path(m))
        index["training"].append(training_figure(Path(m), out / f"training_{backbone}_{stage}.png", suffix))
    scores = common.load_scores(args.scores, args.scores_dir)
    accuracy_figure(cfg, scores, out / "accuracy.png", suffix)
    refs = PaperRefs(args.paper_refs)
    pts = cost_points(cfg, scores, collect_jobs(args.benchmarks_dir) if args.benchmarks_dir else [], refs)
    x_key = cost_figure(pts, out / "cost_vs_accuracy.png", suffix)
    index.update(accuracy=str(out / "accuracy.png"), cost_vs_accuracy=str(out / "cost_vs_accuracy.png"),
                 cost_axis=x_key, cost_points=pts)
    write_json(out / "figures.json", index)
    print(f"figures -> {out}: {len(args.metrics)} training run(s), accuracy, cost vs accuracy")
    return 0
