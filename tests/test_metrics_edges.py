"""Edges of the evaluation metrics (grlo/eval/metrics.py) that the main tests leave open: the error messages a user
sees, one-sample problems, two-problem standard errors, benchmarks without a value among others, empty inputs and
mappings as inputs."""

import math

import pytest

from grlo.errors import GrloError
from grlo.eval import metrics


def test_errors_name_the_problem():
    with pytest.raises(GrloError, match="^no problems to average$"):
        metrics.avg_at_k([])
    with pytest.raises(GrloError, match=r"^problem #1 has no samples$"):
        metrics.mean_pass_at_k([[1], []], 1)
    with pytest.raises(GrloError, match="^no values to average$"):
        metrics.mean_stderr([])
    with pytest.raises(GrloError, match=r"^math_x: unknown domain 'poetry' \(allowed: math, science, code, chat\)$"):
        metrics.domain_averages([{"benchmark": "math_x", "domain": "poetry", "value": 1.0}])


def test_one_sample_per_problem_and_two_problems():
    assert metrics.avg_at_k([[1.0], [0.0]]) == (50.0, pytest.approx(50.0))  # sqrt(0.5 / 2) = 0.5
    assert metrics.mean_stderr([0.2, 0.4]) == (pytest.approx(30.0), pytest.approx(10.0))
    assert metrics.mean_pass_at_k([[1.0], [0.0], [1.0]], 1)[0] == pytest.approx(200 / 3)


def test_domain_averages_skip_missing_values_and_keep_going():
    items = [{"benchmark": "a", "domain": "math", "value": None}, {"benchmark": "b", "domain": "math", "value": 40.0},
             {"benchmark": "c", "domain": "chat", "value": 80.0}]
    out = metrics.domain_averages(items)
    assert out == {"math": 40.0, "chat": 80.0, "overall": 60.0, "benchmarks": {"math": ["b"], "chat": ["c"]}}
    assert metrics.domain_averages({"a": items[0]}) == {"overall": None, "benchmarks": {}}
    assert metrics.domain_averages({}) == {"overall": None, "benchmarks": {}}


def test_overall_averages_of_nothing_and_of_a_mapping():
    empty = {"overall": None, "overall_stderr": None, "mean_benchmarks": None, "mean_benchmarks_stderr": None}
    assert metrics.overall_averages([]) == empty
    assert metrics.overall_averages({"a": {"benchmark": "a", "domain": "math", "value": None}}) == empty
    by_name = {"m1": {"benchmark": "m1", "domain": "math", "value": 20.0, "stderr": 3.0},
               "m2": {"benchmark": "m2", "domain": "math", "value": 40.0, "stderr": 4.0},
               "s": {"benchmark": "s", "domain": "science", "value": 90.0, "stderr": 6.0}}
    out = metrics.overall_averages(by_name)
    assert out["overall"] == pytest.approx((30.0 + 90.0) / 2)
    assert out["overall_stderr"] == pytest.approx(math.sqrt((3.0 / 4) ** 2 + (4.0 / 4) ** 2 + (6.0 / 2) ** 2))
    assert out["mean_benchmarks"] == pytest.approx(50.0)
    assert out["mean_benchmarks_stderr"] == pytest.approx(math.sqrt(9 + 16 + 36) / 3)
