"""`grlo table --name table1..table5`: the five results tables, each as CSV (with a `#` header block) and Markdown.

table1  main results: base, GRLO, RLVR, GRLO->RLVR and Qwen3-4B (non-thinking, thinking); a column per benchmark,
        domain averages, overall average, the paper's overall average beside ours where the abstract gives one;
        plus `<stem>.cells.csv`, one tidy row per cell with n, k and standard error.
table2  cost: prompts, measured GPU-hours, GPU model and count, data and compute ratios vs the RLVR baseline.
table3  GRLO vs Qwen's released models per benchmark, with differences (and Qwen's own reported numbers, other protocol).
table4  the GRLO -> RLVR stage's gain per benchmark.
table5  the other backbones of `backbones.extra`.
A cell without a score file is empty; nothing is filled in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grlo import config as _config
from grlo.accounting import collect_jobs, stage_gpu_hours
from grlo.errors import GrloError
from grlo.eval.metrics import linear_stderr
from grlo.eval.reference import REFERENCE_MODEL
from grlo.models.custom import model_ids as custom_model_ids
from grlo.report import common
from grlo.report.common import DOMAIN_ORDER, averages, bench_info, model_label
from grlo.report.paper_refs import PaperRefs

NAMES = ("table1", "table2", "table3", "table4", "table5")
OVERALL_KEYS = ("overall", "overall_stderr", "mean_benchmarks", "mean_benchmarks_stderr")
DEFAULT_COMPETITION_MATH = ["aime24", "aime25", "amc23"]


def _bench_list(cfg: dict) -> list[str]:
    return list(_config.get(cfg, "evaluation.benchmarks", []) or [])


def _primary(cfg: dict) -> str:
    return _config.get(cfg, "backbones.primary")


def _avg_columns(benchmarks: list[str], scores: dict) -> list[str]:
    doms = []
    for b in benchmarks:
        d = bench_info(b, scores)["domain"]
        if d and d not in doms:
            doms.append(d)
    return [f"avg_{d}" for d in DOMAIN_ORDER if d in doms]


def _model_row(model: str, benchmarks: list[str], scores: dict, mode: str = "paper") -> dict:
    row: dict = {"model": model, "label": model_label(model, mode)}
    for b in benchmarks:
        s = scores.get((model, b))
        row[b] = None if s is None else s.get("value")
    for k, v in averages(model, benchmarks, scores).items():
        row[k if k in OVERALL_KEYS else f"avg_{k}"] = v
    return row


def _diff(a, b):
    return None if a is None or b is None else a - b


def _key_stderr(model: str, key: str, benchmarks: list[str], scores: dict) -> float | None:
    """Standard error of one table entry of a model: a benchmark cell, a domain average (avg_<domain>) or an overall."""
    if key in benchmarks:
        return (scores.get((model, key)) or {}).get("stderr")
    if key in ("overall", "mean_benchmarks"):
        return averages(model, benchmarks, scores).get(f"{key}_stderr")
    if key.startswith("avg_"):
        members = [b for b in benchmarks if bench_info(b, scores)["domain"] == key[4:]]
        se = [(scores.get((model, b)) or {}).get("stderr") for b in members]
        return linear_stderr([(1.0 / len(members), x) for x in se]) if members else None
    return None


def _diff_stderr(a: str, b: str, key: str, benchmarks: list[str], scores: dict) -> float | None:
    """Standard error of model a's entry minus model b's: sqrt(se_a^2 + se_b^2) (independent samples)."""
    return linear_stderr([(1.0, _key_stderr(a, key, benchmarks, scores)), (1.0, _key_stderr(b, key, benchmarks, scores))])


def _md_labels(benchmarks: list[str], scores: dict) -> dict:
    return {b: bench_info(b, scores)["label"] for b in benchmarks}


# ------------------------------------------------------------------------------------------------------------- table 1
def table1(cfg: dict, scores: dict, refs: PaperRefs) -> dict:
    primary = _primary(cfg)
    benches = _bench_list(cfg)
    models = [f"{primary}--{v}" for v in _config.get(cfg, "evaluation.variants", [])]
    models += list(_config.get(cfg, "evaluation.released", []) or [])
    models += custom_model_ids(cfg)
    if _config.get(cfg, "evaluation.known_answer_row"):
        models.append(REFERENCE_MODEL)
    paper_avg = {r.model: r for r in refs.by_source["abstract"].values() if r.benchmark == "all" and r.value is not None}
    rows = []
    for m in models:
        row = _model_row(m, benches, scores, cfg.get("mode", "paper"))
        ref = paper_avg.get(m)
        row["paper_overall"] = ref.value if ref else None
        row["paper_source"] = f"{ref.source} ({ref.certainty}) {ref.url}" if ref else ""
        rows.append(row)
    overall_cols = ["overall", "overall_stderr", "mean_benchmarks", "mean_benchmarks_stderr"]
    cols = ["model", "label", *benches, *_avg_columns(benches, scores), *overall_cols, "paper_overall",
            "paper_source"]
    cells = [_cell(m, b, scores) for m in models for b in benches]
    notes = ["values in percent (0-100); empty = not run (no score file): a score of 0 is written as 0",
             *judge_notes(cells),
             "domain averages are unweighted over a domain's benchmarks; overall = unweighted over domains "
             "(grlo.eval.metrics.domain_averages); mean_benchmarks = unweighted over benchmarks; an average with a "
             "missing member is left empty",
             "standard errors: per cell over problems (grlo.eval.metrics.avg_at_k); of an average sqrt(sum w^2 se^2) "
             "with independent benchmarks (grlo.eval.metrics.overall_averages)",
             "per-cell n, k, standard error, share of completions cut at the token limit and share with no extracted "
             "answer: the .cells.csv beside this table",
             "paper_overall: the abstract's 'average across all domains'; its benchmark list and protocol are unknown "
             "(results/README.md), so ours is the same quantity only by assumption"]
    return {"columns": cols, "rows": rows, "notes": notes, "cells": cells,
            "md_columns": ["label", *benches, *_avg_columns(benches, scores), *overall_cols, "paper_overall"],
            "md_empty": {b: NOT_RUN for b in benches},
            "md_headers": {**_md_labels(benches, scores), "overall_stderr": "± se", "mean_benchmarks": "mean (benchmarks)",
                           "mean_benchmarks_stderr": "± se"},
            "title": "Table 1: main results"}


NOT_RUN = "not run"
CELL_COLUMNS = ["model", "benchmark", "label", "domain", "status", "metric", "value", "stderr", "n", "k", "n_samples",
                "truncated_share", "no_answer_share", "scorer", "judge", "judge_revision", "paper_judge", "score_file",
                "samples"]


def judge_notes(cells: list[dict]) -> list[str]:
    """One note per AlpacaEval judge found in the cells: its id, revision and whether it is the paper's judge (a
    substitute judge's LC win rate is another measurement than the paper's AE2-LC: never compare the two)."""
    seen: dict[tuple, list[str]] = {}
    for c in cells:
        if c.get("judge") is not None or c.get("status", "").endswith("(no judge)"):
            seen.setdefault((c["benchmark"], c.get("judge"), c.get("judge_revision"), c.get("paper_judge"),
                             c["status"]), []).append(c["model"])
    notes = []
    for (bench, judge, rev, paper, status), models in seen.items():
        if status != "scored":
            notes.append(f"{bench}: {status} for {', '.join(models)}")
            continue
        kind = ("the paper's judge (AlpacaEval 2's official annotator)" if paper else
                "a substitute judge, not the paper's: its LC win rate is not comparable with the paper's AE2-LC")
        notes.append(f"{bench} judged by {judge}@{rev or 'unpinned'}, {kind} ({', '.join(models)})")
    return notes


def _cell(model: str, bench: str, scores: dict) -> dict:
    """One tidy row: what a reviewer needs to trust a cell (n, k, se, truncation and no-answer shares)."""
    s = scores.get((model, bench)) or {}
    info = bench_info(bench, scores)
    row = {"model": model, "benchmark": bench, "label": info["label"], "domain": info["domain"],
           "status": "scored" if s.get("value") is not None else (s.get("status") or NOT_RUN)}
    judge = s.get("judge") if isinstance(s.get("judge"), dict) else None
    row.update({"judge": (judge or {}).get("model") or (judge or {}).get("kind"),
                "judge_revision": (judge or {}).get("revision"), "paper_judge": (judge or {}).get("paper_judge")})
    keys = {"metric": "metric", "value": "value", "stderr": "stderr", "n": "n", "k": "k", "n_samples": "n_samples",
            "truncated_share": "truncated_share", "no_answer_share": "no_answer_share", "scorer": "scorer",
            "score_file": "_path", "samples": "samples"}
    row.update({col: s.get(key) for col, key in keys.items()})
    return row


# ------------------------------------------------------------------------------------------------------------- table 2
def table2(cfg: dict, scores: dict, refs: PaperRefs, jobs: list, prompts: int | None, rlvr_prompts: int | None,
           deviations: list[str] | None = None) -> dict:
    primary = _primary(cfg)
    rlvr_mode = _config.get(cfg, "rlvr.mode", "checkpoint")
    ab = refs.by_source["abstract"]
    base = refs.by_source["baseline"]

    def measured(stage: str, prompts_used: int | None) -> dict:
        g = stage_gpu_hours(jobs, stage, primary)
        return {"prompts": prompts_used, "gpu_hours": g["gpu_hours"] if g else None,
                "gpu_model": g["gpu_model"] if g else None, "gpus": g["max_gpus"] if g else None,
                "cpu_hours": g["cpu_hours"] if g else None, "wall_hours": g["wall_hours"] if g else None,
                "certainty": "measured" if g else "not run",
                "source": "benchmarks/ TSV x device.json" if g else ""}

    grlo = {"run": "GRLO (ours)", "stage": "grlo", **measured("grlo", prompts), "deviations": "; ".join(deviations or []),
            "paper_prompts": ab["grlo_prompts"].value, "paper_gpu_hours": ab["grlo_gpu_hours"].value,
            "paper_data_ratio": ab["data_ratio"].value, "paper_compute_ratio": ab["compute_ratio"].value}
    if rlvr_mode == "train":
        rlvr = {"run": "RLVR baseline (ours, trained)", "stage": "rlvr", **measured("rlvr", rlvr_prompts)}
    else:  # the public checkpoint: its cost is the reported one, marked inferred
        rlvr = {"run": "RLVR baseline (public checkpoint; reported cost)", "stage": "rlvr",
                "prompts": base["rlvr_prompts"].value, "gpu_hours": base["rlvr_gpu_hours"].value,
                "gpu_model": base["rlvr_gpu_model"].text,
                "gpus": int(base["rlvr_nodes"].value * base["rlvr_gpus_per_node"].value),
                "cpu_hours": None, "wall_hours": base["rlvr_wall_hours"].value, "certainty": "inferred",
                "source": base["rlvr_gpu_hours"].cite()}
    rows = [grlo, rlvr]
    two = {"run": "GRLO -> RLVR stage (ours)", "stage": "grlo-rlvr", **measured("grlo-rlvr", rlvr_prompts)}
    if two["gpu_hours"] is not None or two["cpu_hours"] is not None:
        rows.append(two)
    for r in rows:
        r["data_ratio_vs_rlvr"] = _ratio(rlvr["prompts"], r["prompts"])
        r["compute_ratio_vs_rlvr"] = _ratio(rlvr["gpu_hours"], r["gpu_hours"])
    cols = ["run", "stage", "prompts", "gpu_hours", "gpu_model", "gpus", "cpu_hours", "wall_hours",
            "data_ratio_vs_rlvr", "compute_ratio_vs_rlvr", "paper_prompts", "paper_gpu_hours", "paper_data_ratio",
            "paper_compute_ratio", "certainty", "source", "deviations"]
    notes = [f"deviation of the GRLO run: {d}" for d in deviations or []]
    notes += ["GPU-hours = wall seconds x GPUs used / 3600, from each job's Snakemake benchmark TSV and the device "
             "record written by the job (NVML); CPU-only runs have 0 GPU-hours and report CPU-hours",
             "ratios = RLVR baseline / this run (how many times less data or compute)",
             f"paper values: {ab['grlo_gpu_hours'].cite()}",
             "the RLVR baseline is inferred to be General-Reasoner (230K prompts, 4 nodes x 8 H100 x ~48 h): "
             + base["baseline_name"].cite()]
    return {"columns": cols, "rows": rows, "notes": notes, "md_digits": 2,
            "md_columns": ["run", "prompts", "gpu_hours", "gpu_model", "gpus", "cpu_hours", "data_ratio_vs_rlvr",
                           "compute_ratio_vs_rlvr", "paper_prompts", "paper_gpu_hours", "paper_data_ratio",
                           "paper_compute_ratio", "certainty"],
            "title": "Table 2: training cost"}


def _ratio(num, den):
    if num is None or den is None or den == 0:
        return None
    return num / den


# ------------------------------------------------------------------------------------------------------------- table 3
def table3(cfg: dict, scores: dict, refs: PaperRefs) -> dict:
    primary = _primary(cfg)
    benches = _bench_list(cfg)
    grlo = f"{primary}--grlo"
    released = list(_config.get(cfg, "evaluation.released", []) or [])
    custom = custom_model_ids(cfg)
    series = {m: _model_row(m, benches, scores) for m in [grlo, *released, *custom]}
    keys = [*benches, *_avg_columns(benches, scores), "overall"]
    # column suffix per compared model: the released model's mode (qwen3-4b--thinking -> thinking), a custom
    # model's name (my-sft--custom -> my-sft)
    tag = {m: m.partition("--")[2] for m in released} | {m: m.partition("--")[0] for m in custom}
    rows = []
    for k in keys:
        row = {"benchmark": k, "label": bench_info(k, scores)["label"] if k in benches else k,
               "grlo": series[grlo].get(k)}
        for m in [*released, *custom]:
            t = tag[m]
            row[m] = series[m].get(k)
            row[f"diff_vs_{t}"] = _diff(row["grlo"], row[m])
            row[f"diff_vs_{t}_stderr"] = (_diff_stderr(grlo, m, k, benches, scores)
                                          if row[f"diff_vs_{t}"] is not None else None)
            if m in released:
                ref = refs.for_model_benchmark(m, k) if k in benches else None
                row[f"qwen3_report_{t}"] = ref.value if ref else None
        rows.append(row)
    cols = ["benchmark", "label", "grlo"]
    for m in [*released, *custom]:
        t = tag[m]
        cols += [m, f"diff_vs_{t}", f"diff_vs_{t}_stderr"] + ([f"qwen3_report_{t}"] if m in released else [])
    notes = ["diff = GRLO - released model, both measured by this package with the same protocol; "
             "diff_vs_*_stderr = sqrt(se_a^2 + se_b^2) (independent samples; `grlo compare` gives a paired interval)",
             "empty = not run (no score file)",
             "qwen3_report_*: Qwen's own numbers (Qwen3 Technical Report, arXiv 2505.09388, Tables 17/18; known) under "
             "Qwen's protocol (32K tokens, its sampling); NOT the same protocol as our columns, shown for orientation",
             "abstract claim: GRLO is 'even competitive' with Qwen's released post-trained models"]
    return {"columns": cols, "rows": rows, "notes": notes, "md_columns": cols[1:],
            "md_headers": {"grlo": model_label(grlo, cfg.get("mode", "paper")),
                           **{m: model_label(m, cfg.get("mode", "paper")) for m in [*released, *custom]}},
            "md_empty": {c: NOT_RUN for c in ["grlo", *released, *custom]},
            "title": "Table 3: GRLO vs Qwen's released models" + (" and custom models" if custom else "")}


# ------------------------------------------------------------------------------------------------------------- table 4
def table4(cfg: dict, scores: dict, refs: PaperRefs) -> dict:
    primary = _primary(cfg)
    benches = _bench_list(cfg)
    comp = set(_config.get(cfg, "report.competition_math", DEFAULT_COMPETITION_MATH) or [])
    ids = {v: f"{primary}--{v}" for v in ("base", "grlo", "rlvr", "grlo-rlvr")}
    series = {v: _model_row(m, benches, scores) for v, m in ids.items()}
    rows = []
    for k in [*benches, *_avg_columns(benches, scores), "overall"]:
        row = {"benchmark": k, "label": bench_info(k, scores)["label"] if k in benches else k,
               "competition_math": (k in comp) if k in benches else None}
        for v in ids:
            row[v] = series[v].get(k)
        row["gain"] = _diff(row["grlo-rlvr"], row["grlo"])
        row["gain_stderr"] = (_diff_stderr(ids["grlo-rlvr"], ids["grlo"], k, benches, scores)
                              if row["gain"] is not None else None)
        rows.append(row)
    cols = ["benchmark", "label", "competition_math", "base", "grlo", "rlvr", "grlo-rlvr", "gain", "gain_stderr"]
    notes = ["gain = GRLO->RLVR - GRLO, points; gain_stderr = sqrt(se_a^2 + se_b^2) (independent samples)",
             "empty = not run (no score file); base and rlvr columns for reference",
             f"competition-math benchmarks (config report.competition_math): {', '.join(sorted(comp))}",
             "abstract claim: the later RLVR stage gives 'only selective gains, mainly on harder competition-math "
             "benchmarks' (arXiv 2605.15464, known)"]
    return {"columns": cols, "rows": rows, "notes": notes, "md_columns": cols[1:],
            "title": "Table 4: gain of the RLVR stage on top of GRLO"}


# ------------------------------------------------------------------------------------------------------------- table 5
def table5(cfg: dict, scores: dict, refs: PaperRefs) -> dict:
    benches = _bench_list(cfg)
    extra = list(_config.get(cfg, "backbones.extra", []) or [])
    variants = list(_config.get(cfg, "evaluation.extra_variants", ["base", "grlo"]) or [])
    rows = []
    for bb in extra:
        base_row = None
        for v in variants:
            row = _model_row(f"{bb}--{v}", benches, scores, cfg.get("mode", "paper"))
            row["backbone"] = bb
            if v == "base":
                base_row = row
            row["overall_gain_vs_base"] = (_diff(row["overall"], base_row["overall"])
                                           if base_row is not None and v != "base" else None)
            rows.append(row)
    cols = ["backbone", "model", "label", *benches, *_avg_columns(benches, scores), "overall",
            "overall_gain_vs_base"]
    notes = ["backbones from config backbones.extra; variants from evaluation.extra_variants",
             "the paper names Qwen3-8B, Qwen2.5-3B and Llama-3.2-3B as other backbones (inferred from a summary); "
             "no per-backbone paper numbers are known"]
    if not extra:
        notes.append("backbones.extra is empty in this config: no rows")
    return {"columns": cols, "rows": rows, "notes": notes,
            "md_columns": ["label", *benches, *_avg_columns(benches, scores), "overall", "overall_gain_vs_base"],
            "md_headers": _md_labels(benches, scores), "title": "Table 5: other backbones"}


# ----------------------------------------------------------------------------------------------------------------- CLI
def build(name: str, cfg: dict, scores: dict, refs: PaperRefs, *, jobs=None, prompts=None, rlvr_prompts=None,
          deviations=None) -> dict:
    if name == "table1":
        return table1(cfg, scores, refs)
    if name == "table2":
        return table2(cfg, scores, refs, jobs or [], prompts, rlvr_prompts, deviations)
    if name in ("table3", "table4", "table5"):
        return {"table3": table3, "table4": table4, "table5": table5}[name](cfg, scores, refs)
    raise GrloError(f"unknown table {name!r} (one of {', '.join(NAMES)})", field="--name")


def write(table: dict, output: str | Path, header: list[str]) -> list[Path]:
    output = Path(output)
    if output.suffix != ".csv":
        raise GrloError("output must end in .csv (a .md is written beside it)", path=str(output))
    written = list(common.write_csv_md(output, header, table["columns"], table["rows"],
                                       md_columns=table.get("md_columns"), md_digits=table.get("md_digits", 1),
                                       title=table.get("title", ""), footer=table.get("notes", []),
                                       md_headers=table.get("md_headers"), md_empty=table.get("md_empty")))
    if "cells" in table:
        cells_path = output.with_name(output.stem + ".cells.csv")
        common.write_csv_md(cells_path, header, CELL_COLUMNS, table["cells"], md_digits=2,
                            md_columns=[c for c in CELL_COLUMNS if c not in ("score_file", "samples")],
                            title=table.get("title", "") + " (cells)",
                            footer=["shares are fractions of all scored completions (n_samples); truncated = finish "
                                    "reason 'length' (empty when the generations do not record finish reasons); "
                                    "no answer = nothing extracted (empty for IFEval/AlpacaEval, which extract nothing)"])
        written.append(cells_path)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, choices=NAMES)
    p.add_argument("--config", nargs="+", required=True, help="config files, merged in order")
    p.add_argument("--scores", nargs="*", default=[], help="score summary JSONs (scores/{model}/{bench}.json)")
    p.add_argument("--scores-dir", help="or: read every scores/*/*.json under this directory")
    p.add_argument("--benchmarks-dir", help="table2: the workflow's benchmarks/ directory (TSVs + device.json)")
    p.add_argument("--prompt-stats", help="table2: data/prompts/stats.json (count = GRLO prompts used)")
    p.add_argument("--rlvr-stats", help="table2: data/rlvr/stats.json (count = RLVR prompts used, train mode)")
    p.add_argument("--paper-refs", help="directory of reference CSVs (default: results/paper/ of this repo)")
    p.add_argument("--grlo-manifest", help="table2: the GRLO run's final/manifest.json (deviations are reported)")
    p.add_argument("--output", required=True, help="results/tableN.csv (a .md is written beside it)")


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args.config)
    scores = common.load_scores(args.scores, args.scores_dir)
    refs = PaperRefs(args.paper_refs)
    jobs = None
    if args.name == "table2":
        jobs = collect_jobs(args.benchmarks_dir) if args.benchmarks_dir else []
    table = build(args.name, cfg, scores, refs, jobs=jobs, prompts=common.read_count(args.prompt_stats),
                  rlvr_prompts=common.read_count(args.rlvr_stats),
                  deviations=common.training_deviations(args.grlo_manifest))
    written = write(table, args.output, common.header_lines(cfg))
    print(f"{args.name}: {len(table['rows'])} rows -> " + ", ".join(map(str, written)))
    return 0
