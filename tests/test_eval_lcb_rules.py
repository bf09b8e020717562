"""LiveCodeBench's grader is not on PyPI: these tests pin its rules themselves, each with its source line
(github.com/LiveCodeBench/LiveCodeBench, commit 28fef95), and run programs through our scorer to show that a
program LCB accepts is accepted here and one LCB rejects is rejected here."""

import pytest

from grlo.eval import sandbox
from grlo.eval.scorers import lcb

# lcb_runner/evaluation/testing_util.py line 27, `import_string` (the rule pinned, not our code).
LCB_IMPORT_STRING = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\n"
    "from bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\n"
    "from itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\n"
    "from json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\n"
    "import itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\n"
    "sys.setrecursionlimit(50000)\n")

LIMITS = sandbox.Limits(timeout_s=30, test_timeout_s=lcb.TEST_TIMEOUT_S, mem_mb=1024, isolate=False)


def test_preamble_is_lcbs_import_string():
    assert lcb.preamble() == LCB_IMPORT_STRING


def test_deadline_is_lcbs_join_timeout():
    # compute_code_generation_metrics.py check_correctness: p.join(timeout=(timeout + 1) * len(inputs) + 5);
    # runner/parser.py: --timeout default 6.
    assert lcb.TEST_TIMEOUT_S == 6
    assert [lcb.problem_deadline_s(n) for n in (1, 10, 40)] == [12, 75, 285]
    prob = {"tests": [{"input": "", "output": ""}] * 10}
    lim = lcb.problem_limits(prob, LIMITS)
    assert lim.timeout_s == 75 and lim.test_timeout_s == 6


def _stdio(code, inp, out):
    return lcb.check({"testtype": "stdin", "tests": [{"input": inp, "output": out}]}, f"```python\n{code}\n```", LIMITS)


def _fn(code, fn, inp, out):
    return lcb.check({"testtype": "functional", "fn_name": fn, "tests": [{"input": inp, "output": out}]},
                     f"```python\n{code}\n```", LIMITS)


@pytest.mark.parametrize("code, ok", [
    # names from the preamble without an import (LCB prepends import_string to stdin programs too)
    ("print(gcd(*map(int, input().split())))", True),
    ("h = [3, 1, 2]\nheapify(h)\nprint(heappop(h) * int(input()))", True),
    # recursion deeper than Python's default 1000: LCB sets sys.setrecursionlimit(50000)
    ("def d(n):\n    return 0 if n == 0 else 1 + d(n - 1)\nn = int(input())\nprint(d(n * 2000) // 2000 * 6 // 6)", True),
    # sys.exit after printing: LCB's call_method swallows SystemExit
    ("print(int(input()) * 1)\nimport sys\nsys.exit(3)", True),
    # make_function: top-level names become locals of wrapped_function, so `global` misses them (LCB: runtime error)
    ("c = 0\ndef f():\n    global c\n    c += 1\nf()\nprint(c + int(input()) - 1)", False),
    # a trailing `if __name__ == '__main__':` block runs (clean_if_name)
    ("def main():\n    print(int(input()))\nif __name__ == '__main__':\n    main()", True),
    # an `if __name__ == '__main__':` that is not last never runs: LCB executes in a module named tmp_sol
    ("def main():\n    print(int(input()))\nif __name__ == '__main__':\n    main()\nx = 1", False),
])
def test_stdio_programs_as_lcb_judges_them(code, ok):
    assert _stdio(code, "2\n", "2\n")[1] is ok


def test_large_int_to_str_as_lcb():
    # compute_code_generation_metrics.py line 7: sys.set_int_max_str_digits(50000)
    assert _stdio("print(len(str(10 ** 10000)) - 10000 + int(input()))", "1\n", "2\n")[1]


def test_functional_program_gets_preamble_and_recursion_limit():
    code = ("class Solution:\n    def f(self, n: int) -> int:\n        return 0 if n == 0 else 1 + self.f(n - 1)\n"
            "    def g(self, xs: List[int]) -> int:\n        return reduce(lambda a, b: a * b, xs)")
    assert _fn(code, "f", "5000", "5000")[1]
    assert _fn(code, "g", "[2, 3, 4]", "24")[1]
    assert "sys.setrecursionlimit(50000)" in lcb.functional_program("x = 1")


@pytest.mark.parametrize("got, expected, ok", [
    ("1 2\n3\n", "1 2\n3", True),
    ("1.0 2\n", "1 2.00\n", True),         # every token a Decimal: compared as numbers
    ("Yes 1.0\n", "Yes 1\n", False),       # a non-number token: the line must match as text (convert_line_to_decimals)
    ("1 2 3\n", "1 2\n", False),
    ("a\n\nb\n", "a\nb\n", False),         # inner blank lines count (split on \n)
    ("  a  \n  b\n\n", "a\nb", True),
])
def test_stdout_comparison_is_lcbs(got, expected, ok):
    # testing_util.py grade_stdio: get_stripped_lines, exact line, else convert_line_to_decimals on both lines.
    assert lcb.outputs_match(got, expected) is ok
