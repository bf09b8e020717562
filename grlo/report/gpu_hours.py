"""`grlo gpu-hours`: the measured GPU-hours of every job and per (stage, model) (grlo.accounting), as results CSVs
with a Markdown twin and the provenance header of every results file."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from grlo import config as C
from grlo.accounting import AGG_COLUMNS, JOB_COLUMNS, aggregate, collect_jobs, fmt_cell, write_csv
from grlo.io import write_text
from grlo.report.common import header_lines, markdown_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmarks-dir", required=True, help="the workflow's benchmarks/ directory")
    p.add_argument("--output", required=True, help="per (stage, model) totals CSV (a .md beside it)")
    p.add_argument("--jobs-output", help="optional per-job CSV")
    p.add_argument("--config", nargs="*", default=[], help="config files (for the header: mode, hash)")


def run(args: argparse.Namespace) -> int:
    header = []
    if args.config:
        header = header_lines(C.load(args.config), "GPU-hours = wall seconds x GPUs used / 3600")
    jobs = collect_jobs(args.benchmarks_dir)
    agg = aggregate(jobs)
    write_csv(args.output, AGG_COLUMNS, agg, header)
    if args.jobs_output:
        write_csv(args.jobs_output, JOB_COLUMNS, [asdict(j) for j in jobs], header)
    md = "\n".join(f"> {h}" for h in header) + "\n\n" if header else ""
    md += markdown_table(AGG_COLUMNS, [[fmt_cell(r.get(c)) for c in AGG_COLUMNS] for r in agg]) + "\n"
    write_text(Path(args.output).with_suffix(".md"), md)
    total_gpu = sum(g["gpu_hours"] or 0.0 for g in agg)
    total_cpu = sum(g["cpu_hours"] for g in agg)
    print(f"{len(jobs)} jobs: {total_gpu:.3f} GPU-hours, {total_cpu:.3f} CPU-hours -> {args.output}")
    return 0
