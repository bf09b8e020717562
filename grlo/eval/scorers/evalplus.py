"""HumanEval+ / MBPP+ (pass@1 averaged over samples).

Two back-ends, chosen by the rows:
- EvalPlus's own evaluation (paper mode; rows carry the EvalPlus release row with base_input/plus_input): the
  normalised rows are written back to an EvalPlus-format JSONL, HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH point
  at it before evalplus.data is (re)imported, expected outputs come from `get_groundtruth` and each sample goes
  through `check_correctness` (EvalPlus's untrusted_check) in a process pool. Its CLI is not used (it sleeps 20 s in
  a watchdog). A sample passes HumanEval+ if both base and plus tests pass; the base-only verdict is kept too.
- Our sandbox (smoke mode; rows carry a human-eval style `test` with check(candidate)): the test runs in the caller
  and the candidate in the sandbox behind a proxy (grlo.eval.code_exec.check_function_tests).
Code is extracted with EvalPlus's sanitizer in both.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time

from grlo.errors import GrloError
from grlo.eval import code_exec
from grlo.eval.sandbox import Limits
from grlo.eval.scorers import ScoreResult


def _limits(spec: dict) -> Limits:
    lim = spec.get("sandbox", {}) or {}
    return Limits(timeout_s=float(lim.get("timeout_s", 20)), mem_mb=int(lim.get("mem_mb", 2048)))


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    if all("evalplus" in p and "base_input" in (p["evalplus"] or {}) for p in problems):
        return _score_evalplus(spec, problems, completions, options)
    if all("test" in p for p in problems):
        return _score_sandbox(spec, problems, completions, options)
    raise GrloError("code rows need either EvalPlus fields (base_input) or a human-eval `test`", field=spec["name"])


def _score_sandbox(spec, problems, completions, options) -> ScoreResult:
    limits = _limits(spec)

    def check(problem, completion):
        program = code_exec.program_for(problem, completion)
        return (program, *code_exec.check_function_tests(problem, program, limits))

    records = code_exec.score_completions(problems, completions, check, options.get("workers"))
    return ScoreResult(records, info={"backend": "grlo sandbox (human-eval check() via proxy)",
                                      "isolation": _isolation(), "timeout_s": limits.timeout_s})


def _isolation() -> str:
    from grlo.eval.sandbox import isolation_mode

    return isolation_mode()


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
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import get_groundtruth

    problems, hashcode = _load_evalplus(dataset, rows, os.path.join(workdir, f"{dataset}_override.jsonl"))
    expected = get_groundtruth(problems, hashcode, MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else [])
    return problems, expected


def _score_evalplus(spec, problems, completions, options) -> ScoreResult:
    from concurrent.futures import ProcessPoolExecutor

    from evalplus.eval import PASS
    from evalplus.evaluate import check_correctness

    dataset = spec.get("evalplus_dataset", "humaneval")
    workers = options.get("workers") or max(1, os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="grlo-evalplus-") as tmp:
        ep_problems, expected = evalplus_groundtruth(dataset, [p["evalplus"] for p in problems], tmp)
        t0 = time.perf_counter()
        futures = {}
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for i, (p, comps) in enumerate(zip(problems, completions)):
                tid = p["evalplus"]["task_id"]
                for j, c in enumerate(comps):
                    code = code_exec.program_for(p, c)
                    futures[(i, j)] = (code, ex.submit(check_correctness, dataset, j, ep_problems[tid], code,
                                                       expected[tid], False, False, None))
            out = {k: (code, f.result()) for k, (code, f) in futures.items()}
        elapsed = time.perf_counter() - t0
    records = []
    for i, comps in enumerate(completions):
        ex_, sc, vd, base = [], [], [], []
        for j in range(len(comps)):
            code, res = out[(i, j)]
            b, pl = res["base"][0], res["plus"][0]
            ex_.append(code)
            base.append(1.0 if b == PASS else 0.0)
            sc.append(1.0 if (b == PASS and pl == PASS) else 0.0)
            vd.append(f"base:{b} plus:{pl}")
        records.append({"extracted": ex_, "scores": sc, "verdicts": vd, "base_scores": base,
                        "time_s": elapsed / max(1, len(completions))})
    from grlo.eval import metrics

    base_value, base_se = metrics.avg_at_k([r["base_scores"] for r in records])
    return ScoreResult(records, info={"backend": "evalplus.evaluate.check_correctness", "dataset": dataset,
                                      "base_value": base_value, "base_stderr": base_se})


def evalplus_row_from_human_eval(problem: dict) -> dict | None:
    """An EvalPlus-format row (base_input = the literal arguments of every `candidate(...)` call in the original
    HumanEval check(), plus_input empty) for problems whose tests call the candidate with literal arguments only;
    None otherwise. Used to run EvalPlus's own evaluation on the same samples as our sandbox (throughput benchmark
    and tests) where the EvalPlus release itself cannot be downloaded."""
    import ast

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
