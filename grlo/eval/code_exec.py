"""Checking one code completion against one problem's tests, through the sandbox.

- `program_for(problem, completion)`: EvalPlus's sanitizer extracts the code (markdown fences, chatter, the entry
  point and its dependencies); a body-only completion (base models continuing the prompt) is appended to the prompt.
- `check_function_tests`: HumanEval-style `check(candidate)` tests. The TEST runs here, in the caller (trusted code,
  from the benchmark file); the CANDIDATE runs in the sandbox behind a proxy, so assertions and expected values are
  never visible to it.
- `check_stdio_tests` / `check_call_tests`: LiveCodeBench stdin/stdout and LeetCode-style functional tests; the
  program's outputs are compared here with the expected outputs, which never enter the sandbox.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation

from grlo.eval import sandbox
from grlo.eval.sandbox import CallError, Limits


def extract_code(text: str, entry_point: str | None = None) -> str:
    from evalplus.sanitize import sanitize  # heavy: evalplus

    try:
        return sanitize(text or "", entry_point)
    except Exception:  # tree-sitter parse failures on garbage: nothing usable
        return ""


def program_for(problem: dict, completion: str) -> str:
    entry = problem.get("entry_point")
    code = extract_code(completion, entry)
    if entry and f"def {entry}" not in code:
        code = extract_code(problem.get("problem", "") + (completion or ""), entry)
    return code


def check_function_tests(problem: dict, program: str, limits: Limits | None = None,
                         pool: sandbox.WorkerPool | None = None) -> tuple[bool, str]:
    """Run the problem's `test` (defining check(candidate)) here against the sandboxed program."""
    entry = problem["entry_point"]
    if not program.strip():
        return False, "empty program"
    with sandbox.CallSession(program, limits, pool) as sess:
        if not sess.ready:
            return False, f"load failed: {sess.load_error}"
        env: dict = {"__name__": "__check__"}
        try:
            exec(problem.get("problem", ""), env)  # helpers the tests use (e.g. HumanEval/32's poly)
            # In the original harness the entry point's name is the candidate itself (HumanEval/33 calls it).
            env[entry] = sess.proxy(entry)
            exec(problem["test"], env)
            env["check"](env[entry])
        except AssertionError:
            return False, "assertion failed"
        except CallError as e:
            return False, f"candidate error: {e}"[:300]
        except Exception as e:  # noqa: BLE001 - a comparison on a wrong-typed result can raise anything
            return False, f"{type(e).__name__}: {e}"[:300]
        return True, "passed"


def _tokens_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return Decimal(a) == Decimal(b)
    except (InvalidOperation, ValueError):
        return False


def outputs_match(got: str, expected: str) -> bool:
    """LiveCodeBench-style comparison: line by line after stripping; tokens equal as strings or as decimals."""
    g = [l.strip() for l in got.strip().splitlines()]
    e = [l.strip() for l in expected.strip().splitlines()]
    if len(g) != len(e):
        return False
    for gl, el in zip(g, e):
        if gl == el:
            continue
        gt, et = gl.split(), el.split()
        if len(gt) != len(et) or not all(_tokens_equal(x, y) for x, y in zip(gt, et)):
            return False
    return True


def check_stdio_tests(program: str, tests: list[dict], limits: Limits | None = None,
                      pool: sandbox.WorkerPool | None = None) -> tuple[bool, str]:
    if not program.strip():
        return False, "empty program"
    res = sandbox.run_stdio(program, [t["input"] for t in tests], limits, pool)
    for i, (t, rec) in enumerate(zip(tests, res.lines)):
        if rec.get("timeout"):
            return False, f"test {i}: timeout"
        if rec.get("returncode") != 0:
            return False, f"test {i}: exit {rec.get('returncode')}"
        if not outputs_match(rec.get("stdout", ""), t["output"]):
            return False, f"test {i}: wrong output"
    if len(res.lines) < len(tests):
        return False, f"stopped after {len(res.lines)}/{len(tests)} tests ({res.status})"
    return True, "passed"


def check_call_tests(program: str, fn: str, tests: list[dict], limits: Limits | None = None,
                     pool: sandbox.WorkerPool | None = None) -> tuple[bool, str]:
    """LeetCode functional tests: input = newline-separated JSON arguments, output = JSON value."""
    if not program.strip():
        return False, "empty program"
    with sandbox.CallSession(program, limits, pool) as sess:
        if not sess.ready:
            return False, f"load failed: {sess.load_error}"
        for i, t in enumerate(tests):
            try:
                args = [json.loads(a) for a in t["input"].split("\n") if a.strip()]
                expected = json.loads(t["output"])
                got = sess.call(fn, *args)
            except CallError as e:
                return False, f"test {i}: {e}"[:300]
            except json.JSONDecodeError:
                return False, f"test {i}: malformed test case"
            if isinstance(got, tuple):
                got = list(got)
            if got != expected:
                return False, f"test {i}: wrong output"
    return True, "passed"


def sandbox_pool(limits: Limits, workers: int) -> sandbox.WorkerPool:
    """Sandbox workers for `workers` scoring threads, able to hold `limits`' programs."""
    return sandbox.WorkerPool(workers, sandbox.CallLimits(mem_mb=limits.mem_mb, fsize_mb=limits.fsize_mb,
                                                          nproc=limits.nproc), isolate=limits.isolate)


def n_workers(options: dict) -> int:
    return (options or {}).get("workers") or max(1, os.cpu_count() or 2)


def sandbox_isolation(options: dict) -> str:
    """The isolation code scoring gets (recorded with the score); one line and a stop when the sandbox cannot get
    its namespaces and the config does not set sandbox.allow_weaker: true."""
    cfg = (options or {}).get("config") or {}
    return sandbox.require_isolation(bool((cfg.get("sandbox") or {}).get("allow_weaker", False)))


def score_completions(problems: list[dict], completions: list[list[str]], check, workers: int | None) -> list[dict]:
    """Run `check(problem, completion) -> (program, ok, detail)` on every completion in parallel and gather the
    per-problem sample records (extracted program, 0/1 score, verdict detail, summed time)."""
    jobs = [(i, j) for i, comps in enumerate(completions) for j in range(len(comps))]

    def one(job):
        i, j = job
        t0 = time.perf_counter()
        program, ok, detail = check(problems[i], completions[i][j])
        return program, ok, detail, time.perf_counter() - t0

    records = [{"extracted": [None] * len(c), "scores": [0.0] * len(c), "verdicts": [None] * len(c), "time_s": 0.0}
               for c in completions]
    for (i, j), (program, ok, detail, dt) in zip(jobs, run_parallel(one, jobs, workers)):
        r = records[i]
        r["extracted"][j], r["scores"][j], r["verdicts"][j] = program, 1.0 if ok else 0.0, detail
        r["time_s"] += dt
    return records


def run_parallel(fn, jobs: list, workers: int | None) -> list:
    """Map fn over jobs with threads: each job's heavy work is a sandbox subprocess, so threads are enough."""
    workers = workers or max(1, (os.cpu_count() or 2))
    t0 = time.perf_counter()
    if workers == 1:
        out = [fn(j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            out = list(ex.map(fn, jobs))
    run_parallel.last_elapsed = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- EvalPlus's correctness rules, sandboxed

def evalplus_time_limits(ref_time: list[float], min_time_limit: float | None = None,
                         gt_time_limit_factor: float | None = None) -> tuple[list[float], float]:
    """Per-input limits and the whole test set's deadline, as evalplus 0.3.1's untrusted_check computes them:
    max(min_time_limit, factor x the canonical solution's time) per input; the process is killed once
    min(EVALPLUS_TIMEOUT_PER_TASK=60, sum) + 1 (+1 when not fast_check) + 1 (its join margin) seconds have passed."""
    from evalplus.config import DEFAULT_GT_TIME_LIMIT_FACTOR, DEFAULT_MIN_TIME_LIMIT  # optional: evalplus

    lo = DEFAULT_MIN_TIME_LIMIT if min_time_limit is None else min_time_limit
    factor = DEFAULT_GT_TIME_LIMIT_FACTOR if gt_time_limit_factor is None else gt_time_limit_factor
    limits = [max(lo, factor * t) for t in ref_time]
    per_task = float(os.environ.get("EVALPLUS_TIMEOUT_PER_TASK", 60))
    return limits, min(per_task, sum(limits)) + 1 + 1 + 1


def evalplus_output_ok(dataset: str, entry_point: str, inp, out, exp, atol: float) -> tuple[bool | None, float]:
    """One call's verdict under evalplus 0.3.1's unsafe_execute rules (special oracles, 1e-6 tolerance enforced for
    float outputs, np.allclose with rtol=1e-07 and a type check otherwise); returns (ok, atol for the next input:
    EvalPlus keeps the enforced tolerance for the rest of the test set). ok is None for a find_zero output that
    passes its oracle: EvalPlus 0.3.1 `continue`s there before it records the input, so the set cannot count as
    passed (HumanEval/32 never passes under 0.3.1; reproduced, not fixed, so verdicts stay EvalPlus's). `out` is the
    program's value rebuilt here from plain data, so its __eq__ is the built-in one. Assumption: the special oracles
    see the original inputs, not ones the program may have mutated."""
    import numpy as np  # heavy: numpy
    from evalplus.eval import is_floats  # heavy: evalplus
    from evalplus.eval._special_oracle import (MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS,
                                               _digit_distance_nums, _poly, _surface_Area)  # heavy: evalplus

    try:
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":  # Mbpp/164
                exact = True
            elif entry_point == "sum_div":  # Mbpp/295
                exact = exact or out == 0
            elif entry_point == "surface_Area":  # Mbpp/581
                exact = exact or abs(out - _surface_Area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":  # Mbpp/558
                exact = exact or out == _digit_distance_nums(*inp)
            elif entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = (out == exp) if isinstance(out, bool) else (exp == (out is not None))
        if dataset == "humaneval" and entry_point == "find_zero":
            return (None if abs(_poly(*inp, out)) <= atol else False), atol
    except Exception:  # noqa: BLE001 - a wrong-typed output can make any comparison raise
        return False, atol
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    try:
        if not exact and atol != 0:
            if type(out) != type(exp):
                return False, atol
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False, atol
            return bool(np.allclose(out, exp, rtol=1e-07, atol=atol)), atol
        return bool(exact), atol
    except Exception:  # noqa: BLE001
        return False, atol


def evalplus_set_verdict(dataset: str, entry_point: str, inputs: list, expected: list, atol: float,
                         result: dict | None) -> tuple[str, list[bool]]:
    """(status, per-input details) for one test set as evalplus's untrusted_check reports it: "pass" only when the
    program loaded, finished every input and every output is right; "fail" when it did not load or an output is
    wrong; "timeout" when it was killed or ended without finishing (EvalPlus's unknown state)."""
    from evalplus.eval import FAIL, PASS, TIMEOUT  # heavy: evalplus

    if result is None:  # the worker died with the job
        return TIMEOUT, []
    records = result["records"]
    if records and "load_error" in records[0]:
        return FAIL, []
    recorded = [False] * len(inputs)  # EvalPlus's shared `details` array and its `progress` counter
    progress, seen, done = 0, 0, False
    for rec in records:
        if rec.get("done"):
            done = True
            break
        if rec.get("i") != seen or seen >= len(inputs):
            break  # out of order or extra: not what the runner writes
        i, seen = seen, seen + 1
        ok = False
        if "out" in rec:
            ok, atol = evalplus_output_ok(dataset, entry_point, inputs[i], rec["out"], expected[i], atol)
        if ok is not None:
            recorded[i] = ok
            progress += 1
    details = recorded[:progress]
    if not done or result.get("killed"):
        return TIMEOUT, details
    if len(details) != len(inputs) or not all(details):
        return FAIL, details
    return PASS, details


def check_evalplus(pool: sandbox.WorkerPool, dataset: str, problem: dict, program: str, expected: dict,
                   base_only: bool = False, min_time_limit: float | None = None) -> dict:
    """EvalPlus's check_correctness, with the program run in our sandbox: base then plus inputs, each set in a
    fresh child; returns {"base": (status, details), "plus": (status, details)} as EvalPlus does."""
    names = ["base"] if base_only else ["base", "plus"]
    sets = []
    for name in names:
        tl, deadline = evalplus_time_limits(expected[f"{name}_time"], min_time_limit)
        key = (problem["task_id"], name)
        if key not in pool.inputs_cache:  # every sample of a task shares its inputs: pickled once
            pool.inputs_cache[key] = sandbox.pickle_inputs(problem[f"{name}_input"])
        sets.append({"inputs_pickle": pool.inputs_cache[key], "time_limits": tl, "deadline_s": deadline})
    results = pool.run_calls(program, problem["entry_point"], sets) or [None] * len(names)
    return {name: evalplus_set_verdict(dataset, problem["entry_point"], problem[f"{name}_input"], expected[name],
                                       problem["atol"], res)
            for name, res in zip(names, results)}
