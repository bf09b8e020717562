"""HumanEval+ / MBPP+ (pass@1 averaged over samples).

Model-written code runs only in our sandbox (grlo.eval.sandbox), in both back-ends, chosen by the rows:
- EvalPlus test data and rules (paper mode; rows carry the EvalPlus release row with base_input/plus_input): the
  normalised rows are written back to an EvalPlus-format JSONL, HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH point
  at it before evalplus.data is (re)imported, and expected outputs and reference times come from EvalPlus's
  `get_groundtruth` (the benchmark's canonical solutions, trusted code, run here). Each program then runs in a
  long-lived sandboxed worker (grlo.eval.sandbox.WorkerPool) that forks a fresh child per test set; only the inputs
  enter the sandbox, the returned values come back as plain data and are judged here with EvalPlus 0.3.1's rules
  (grlo.eval.code_exec.check_evalplus: base + plus inputs, its per-input time limits, special oracles, float
  tolerance). EvalPlus's own check_correctness is never called on model code (it runs programs in the caller's
  process tree). A sample passes HumanEval+ if both base and plus tests pass; the base-only verdict is kept too.
- Human-eval style rows (smoke mode; a `test` with check(candidate)): the test runs in the caller and the candidate
  in the sandbox behind a proxy (grlo.eval.code_exec.check_function_tests).
Code is extracted with EvalPlus's sanitizer in both. Both stop with one line when the sandbox cannot get its
namespaces, unless the config sets sandbox.allow_weaker: true; the isolation is recorded in scorer_info.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import tempfile

from grlo.errors import GrloError
from grlo.eval import code_exec, metrics, sandbox
from grlo.eval.sandbox import Limits
from grlo.eval.scorers import ScoreResult


def _limits(spec: dict) -> Limits:
    lim = spec.get("sandbox", {}) or {}
    return Limits(timeout_s=float(lim.get("timeout_s", 20)), mem_mb=int(lim.get("mem_mb", 2048)))


# EvalPlus's minimum per-input time limit. evalplus 0.3.1 (config.DEFAULT_MIN_TIME_LIMIT) has 1 s; upstream raised it
# to 4 s "to minimize false positives" (evalplus commit af49138): 4 s by default (registry sandbox.min_time_limit_s).
MIN_TIME_LIMIT_S = 4.0


def min_time_limit(spec: dict) -> float:
    return float((spec.get("sandbox") or {}).get("min_time_limit_s", MIN_TIME_LIMIT_S))


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    if all("evalplus" in p and "base_input" in (p["evalplus"] or {}) for p in problems):
        return _score_evalplus(spec, problems, completions, options)
    if all("test" in p for p in problems):
        return _score_sandbox(spec, problems, completions, options)
    raise GrloError("code rows need either EvalPlus fields (base_input) or a human-eval `test`", field=spec["name"])


def _score_sandbox(spec, problems, completions, options) -> ScoreResult:
    isolation = code_exec.sandbox_isolation(options)
    limits = _limits(spec)

    workers = code_exec.n_workers(options)
    with code_exec.sandbox_pool(limits, workers) as pool:

        def check(problem, completion):
            program = code_exec.program_for(problem, completion)
            return (program, *code_exec.check_function_tests(problem, program, limits, pool))

        records = code_exec.score_completions(problems, completions, check, workers)
    return ScoreResult(records, info={"backend": "grlo sandbox (human-eval check() via proxy)",
                                      "isolation": isolation, "timeout_s": limits.timeout_s})


def _load_evalplus(dataset: str, rows: list[dict], path: str):
    """Point EvalPlus at `path` (its override variable) and load the problems and their hash through its API."""
    var = "HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.environ[var] = path
    mod_name = "evalplus.data.humaneval" if dataset == "humaneval" else "evalplus.data.mbpp"
    if mod_name in sys.modules:  # the override is read at import time
        importlib.reload(sys.modules[mod_name])
    mod = importlib.import_module(mod_name)
    if dataset == "humaneval":
        return mod.get_human_eval_plus(err_incomplete=False), mod.get_human_eval_plus_hash()
    return mod.get_mbpp_plus(err_incomplete=False), mod.get_mbpp_plus_hash()


def evalplus_groundtruth(dataset: str, rows: list[dict], workdir: str):
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS  # heavy: evalplus
    from evalplus.evaluate import get_groundtruth  # heavy: evalplus

    problems, hashcode = _load_evalplus(dataset, rows, os.path.join(workdir, f"{dataset}_override.jsonl"))
    expected = get_groundtruth(problems, hashcode, MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else [])
    return problems, expected


def _score_evalplus(spec, problems, completions, options) -> ScoreResult:
    from evalplus.eval import PASS  # heavy: evalplus

    isolation = code_exec.sandbox_isolation(options)
    dataset = spec.get("evalplus_dataset", "humaneval")
    workers = code_exec.n_workers(options)
    mem_mb = _evalplus_memory_mb()
    floor = min_time_limit(spec)
    with tempfile.TemporaryDirectory(prefix="grlo-evalplus-") as tmp:
        ep_problems, expected = evalplus_groundtruth(dataset, [p["evalplus"] for p in problems], tmp)
    with sandbox.WorkerPool(workers, sandbox.CallLimits(mem_mb=mem_mb)) as pool:

        def check(problem, completion):
            tid = problem["evalplus"]["task_id"]
            program = code_exec.program_for(problem, completion)
            res = code_exec.check_evalplus(pool, dataset, ep_problems[tid], program, expected[tid],
                                           min_time_limit=floor)
            (b, _), (pl, _) = res["base"], res["plus"]
            return program, b == PASS and pl == PASS, f"base:{b} plus:{pl}"

        records = code_exec.score_completions(problems, completions, check, workers)
    for r in records:  # the base-only verdict is in each detail ("base:pass plus:fail")
        r["base_scores"] = [1.0 if (v or "").startswith("base:pass") else 0.0 for v in r["verdicts"]]
    base_value, base_se = metrics.avg_at_k([r["base_scores"] for r in records])
    return ScoreResult(records, info={"backend": "EvalPlus test data and correctness rules (evalplus "
                                      "check_correctness semantics), programs in the grlo sandbox",
                                      "dataset": dataset, "isolation": isolation, "mem_mb": mem_mb,
                                      "time_limits": f"evalplus: max({floor:g} s, 4 x canonical time) per input "
                                      "(4 s floor: evalplus commit af49138)", "min_time_limit_s": floor,
                                      "base_value": base_value, "base_stderr": base_se})


def _evalplus_memory_mb() -> int:
    """EvalPlus's address-space limit (query_maximum_memory_bytes: EVALPLUS_MAX_MEMORY_BYTES, default 4 GiB, at most
    the machine's memory)."""
    from evalplus.eval import query_maximum_memory_bytes  # heavy: evalplus

    b = query_maximum_memory_bytes()
    return 1 << 20 if b is None else max(256, b >> 20)


def evalplus_row_from_human_eval(problem: dict) -> dict | None:
    """An EvalPlus-format row (base_input = the literal arguments of every `candidate(...)` call in the original
    HumanEval check(), plus_input empty) for problems whose tests call the candidate with literal arguments only;
    None otherwise. Used to run EvalPlus's own evaluation on the same samples as our sandbox (throughput benchmark
    and tests) where the EvalPlus release itself cannot be downloaded."""
    tree = ast.parse(problem["test"])
    inputs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
            if node.keywords:
                return None
            try:
                inputs.append([ast.literal_eval(a) for a in node.args])
            except (ValueError, SyntaxError):
                return None
    if not inputs:
        return None
    return {"task_id": problem["task_id"], "prompt": problem["prompt"], "entry_point": problem["entry_point"],
            "canonical_solution": problem["canonical_solution"], "base_input": inputs, "plus_input": [],
            "atol": 0, "contract": ""}
