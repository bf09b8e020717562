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
import time
from decimal import Decimal, InvalidOperation

from grlo.eval import sandbox
from grlo.eval.sandbox import CallError, Limits


def extract_code(text: str, entry_point: str | None = None) -> str:
    from evalplus.sanitize import sanitize

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


def check_function_tests(problem: dict, program: str, limits: Limits | None = None) -> tuple[bool, str]:
    """Run the problem's `test` (defining check(candidate)) here against the sandboxed program."""
    entry = problem["entry_point"]
    if not program.strip():
        return False, "empty program"
    with sandbox.CallSession(program, limits) as sess:
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


def check_stdio_tests(program: str, tests: list[dict], limits: Limits | None = None) -> tuple[bool, str]:
    if not program.strip():
        return False, "empty program"
    res = sandbox.run_stdio(program, [t["input"] for t in tests], limits)
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


def check_call_tests(program: str, fn: str, tests: list[dict], limits: Limits | None = None) -> tuple[bool, str]:
    """LeetCode functional tests: input = newline-separated JSON arguments, output = JSON value."""
    if not program.strip():
        return False, "empty program"
    with sandbox.CallSession(program, limits) as sess:
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
    from concurrent.futures import ThreadPoolExecutor

    import os

    workers = workers or max(1, (os.cpu_count() or 2))
    t0 = time.perf_counter()
    if workers == 1:
        out = [fn(j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            out = list(ex.map(fn, jobs))
    run_parallel.last_elapsed = time.perf_counter() - t0
    return out
