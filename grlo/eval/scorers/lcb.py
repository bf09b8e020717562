"""LiveCodeBench code generation: public + private tests run in our sandbox (pass@1 over samples).

Rows come from livecodebench/code_generation_lite (release files test*.jsonl), restricted to the configured date
window [date_from, date_to) on `contest_date`. Private tests are stored base64(zlib(pickle(json string))); they are
unpickled with an Unpickler that refuses every global, so only plain strings/bytes can come out of it
(grlo/data/normalisers.py).
Programs run with LiveCodeBench's own rules (below, each with its source): its import preamble and recursion limit
on every program, its stdin wrapper (make_function), its stdout comparison, its per-test timeout 6 s and its
whole-problem deadline (6 + 1) * n_tests + 5 s. Functional (LeetCode) problems call `Solution.<func_name>` with the
JSON-decoded arguments and compare the returned value (a tuple counts as a list, as in LCB).
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from decimal import Decimal, InvalidOperation

from grlo.eval import code_exec, sandbox
from grlo.eval.sandbox import Limits
from grlo.eval.scorers import ScoreResult


# ---------------------------------------------------------------- LiveCodeBench's own execution rules
# Source: LiveCodeBench lcb_runner/evaluation/testing_util.py (`import_string`, clean_if_name, make_function,
# grade_call_based, grade_stdio, get_stripped_lines, convert_line_to_decimals; run_test(timeout=6)) and
# lcb_runner/evaluation/compute_code_generation_metrics.py (sys.set_int_max_str_digits(50000) at import; the
# whole-problem join timeout `(timeout + 1) * n_tests + 5`); lcb_runner/runner/parser.py `--timeout` default 6;
# lcb_runner/utils/extraction_utils.py extract_code (read at github.com/LiveCodeBench/LiveCodeBench commit 28fef95).

# LCB's preamble, prepended to every program (functional and stdin): `from M import *` for these modules in this
# order, then `import M` for each but builtins and typing, then the recursion limit.
PREAMBLE_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                    "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")
RECURSION_LIMIT = 50000
INT_MAX_STR_DIGITS = 50000
TEST_TIMEOUT_S = 6  # LCB's run_test / --timeout default


def preamble() -> str:
    star = "".join(f"from {m} import *\n" for m in PREAMBLE_MODULES)
    plain = "".join(f"import {m}\n" for m in PREAMBLE_MODULES if m not in ("builtins", "typing"))
    return star + plain + f"sys.setrecursionlimit({RECURSION_LIMIT})\n"


def problem_deadline_s(n_tests: int, test_timeout_s: float = TEST_TIMEOUT_S) -> float:
    """LCB's whole-problem limit (check_correctness joins its worker after (timeout + 1) * n_tests + 5 s)."""
    return (test_timeout_s + 1) * n_tests + 5


def _clean_if_name(code: str) -> str:
    """LCB's clean_if_name: a trailing `if __name__ == '__main__':` block is replaced by its body."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:  # noqa: BLE001 - LCB keeps the code as it is when this fails
        pass
    return code


def _make_function(code: str) -> str:
    """LCB's make_function: top-level imports stay at module level after the preamble; every other statement moves
    into the body of `wrapped_function()` (so its names are locals of that function, as in LCB). Code that does not
    parse is kept unchanged (it then fails to compile, as in LCB)."""
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        fn = ast.FunctionDef(name="wrapped_function", args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                             kw_defaults=[], defaults=[]), body=body or [ast.Pass()], decorator_list=[], lineno=1)
        if sys.version_info >= (3, 12):
            fn.type_params = []
        return preamble() + "\n" + ast.unparse(imports) + "\n" + ast.unparse(ast.fix_missing_locations(fn))
    except Exception:  # noqa: BLE001
        return code


def stdio_program(code: str) -> str:
    """The script our sandbox runs once per stdin test: LCB's transformation (clean_if_name, make_function) executed
    in a fresh module named `tmp_sol` (LCB's compile_code), then `wrapped_function()` called with SystemExit
    swallowed (LCB's call_method), under LCB's int-to-str digit limit."""
    src = _make_function(_clean_if_name(code))
    return ("import sys as _s, types as _t\n"
            f"_s.set_int_max_str_digits({INT_MAX_STR_DIGITS})\n"
            "_m = _t.ModuleType('tmp_sol', '')\n"
            f"exec(compile({src!r}, '<solution>', 'exec'), _m.__dict__)\n"
            "try:\n    _m.wrapped_function()\nexcept SystemExit:\n    pass\n")


def functional_program(code: str) -> str:
    """LCB's grade_call_based: the preamble, a blank line, then the code."""
    return f"import sys\nsys.set_int_max_str_digits({INT_MAX_STR_DIGITS})\n" + preamble() + "\n\n" + code


def _lines(val: str) -> list[str]:
    """LCB's get_stripped_lines: strip the whole output, split on \\n, strip each line."""
    return [line.strip() for line in val.strip().split("\n")]


def _decimals(line: str):
    try:
        return [Decimal(x) for x in line.split()]
    except (InvalidOperation, ValueError):
        return None


def outputs_match(got: str, expected: str) -> bool:
    """LCB's grade_stdio comparison: same number of stripped lines; per line equal as text, else every token of both
    lines parses as a Decimal and the lists are equal (a line with any non-number token must match as text)."""
    g, e = _lines(got), _lines(expected)
    if len(g) != len(e):
        return False
    for gl, el in zip(g, e):
        if gl == el:
            continue
        gd, ed = _decimals(gl), _decimals(el)
        if gd is None or ed is None or gd != ed:
            return False
    return True


def extract_code(text: str) -> str:
    """LCB's extract_code for chat models: the lines between the last two lines that contain ``` ("" when fewer
    than two such lines)."""
    lines = (text or "").split("\n")
    idx = [i for i, line in enumerate(lines) if "```" in line]
    if len(idx) < 2:
        return ""
    return "\n".join(lines[idx[-2] + 1: idx[-1]])


def check_stdio(code: str, tests: list[dict], limits: Limits, pool=None) -> tuple[bool, str]:
    if not code.strip():
        return False, "empty program"
    res = sandbox.run_stdio(stdio_program(code), [t["input"] for t in tests], limits, pool)
    for i, (t, rec) in enumerate(zip(tests, res.lines)):
        if rec.get("timeout"):
            return False, f"test {i}: timeout"
        if rec.get("returncode") != 0:
            return False, f"test {i}: runtime error"
        if not outputs_match(rec.get("stdout", ""), t["output"]):
            return False, f"test {i}: wrong output"
    if len(res.lines) < len(tests):
        return False, f"stopped after {len(res.lines)}/{len(tests)} tests ({res.status})"
    return True, "passed"


def problem_limits(problem: dict, base: Limits) -> Limits:
    """Per problem: LCB's per-test timeout and its whole-problem deadline for this problem's number of tests."""
    return dataclasses.replace(base, timeout_s=problem_deadline_s(len(problem["tests"]), base.test_timeout_s))


def check(problem: dict, completion: str, limits: Limits, pool=None) -> tuple[str, bool, str]:
    code = extract_code(completion)
    lim = problem_limits(problem, limits)
    if problem["testtype"] == "functional":
        if not code.strip():
            return code, False, "empty program"
        ok, detail = code_exec.check_call_tests(functional_program(code), f"Solution.{problem['fn_name']}",
                                                problem["tests"], lim, pool)
    else:
        ok, detail = check_stdio(code, problem["tests"], lim, pool)
    return code, ok, detail


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    isolation = code_exec.sandbox_isolation(options)
    sb = spec.get("sandbox", {}) or {}
    limits = Limits(timeout_s=problem_deadline_s(1), test_timeout_s=float(sb.get("test_timeout_s", TEST_TIMEOUT_S)),
                    mem_mb=int(sb.get("mem_mb", 2048)))
    workers = code_exec.n_workers(options)
    with code_exec.sandbox_pool(limits, workers) as pool:
        records = code_exec.score_completions(problems, completions, lambda p, c: check(p, c, limits, pool), workers)
    src = spec["source"]
    return ScoreResult(records, info={"backend": "grlo sandbox, LiveCodeBench's execution rules", "isolation": isolation,
                                      "date_from": src.get("date_from"), "date_to": src.get("date_to"),
                                      "test_timeout_s": limits.test_timeout_s,
                                      "problem_deadline": "(test_timeout_s + 1) * n_tests + 5 s (LiveCodeBench)",
                                      "preamble": "LiveCodeBench import_string (recursion limit 50000) on every "
                                                  "program; stdin programs wrapped as its make_function"})
