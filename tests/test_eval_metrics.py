import math
from itertools import combinations

import pytest

from grlo.errors import GrloError
from grlo.eval import metrics


def brute_pass_at_k(n, c, k):
    # Probability that a random k-subset of n samples (c correct) contains a correct one, by enumeration.
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 3), (6, 3, 2), (8, 8, 4), (7, 1, 7), (10, 4, 5)])
def test_pass_at_k_matches_enumeration_and_closed_form(n, c, k):
    got = metrics.pass_at_k(n, c, k)
    assert got == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)
    closed = 1.0 - (math.comb(n - c, k) / math.comb(n, k))
    assert got == pytest.approx(closed, abs=1e-12)


def test_pass_at_1_is_fraction_correct():
    assert metrics.pass_at_k(64, 16, 1) == pytest.approx(0.25)


@pytest.mark.parametrize("n,c,k", [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(GrloError):
        metrics.pass_at_k(n, c, k)


def test_avg_at_k_mean_and_stderr():
    scores = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    means = [0.5, 0.25, 0.0, 1.0]
    mu = sum(means) / 4
    se = math.sqrt(sum((m - mu) ** 2 for m in means) / 3 / 4)
    value, stderr = metrics.avg_at_k(scores)
    assert value == pytest.approx(100 * mu)
    assert stderr == pytest.approx(100 * se)


def test_avg_at_k_single_problem_has_no_stderr_and_empty_fails():
    assert metrics.avg_at_k([[1, 0]]) == (50.0, None)
    with pytest.raises(GrloError):
        metrics.avg_at_k([])
    with pytest.raises(GrloError):
        metrics.avg_at_k([[1], []])


def test_mean_pass_at_k():
    value, _ = metrics.mean_pass_at_k([[1, 0, 0, 0], [0, 0, 0, 0]], k=2)
    assert value == pytest.approx(100 * (0.5 + 0.0) / 2)


def test_domain_averages_macro_over_domains():
    scores = [
        {"benchmark": "math500", "domain": "math", "value": 80.0},
        {"benchmark": "aime24", "domain": "math", "value": 20.0},
        {"benchmark": "gsm8k", "domain": "math", "value": 90.0},
        {"benchmark": "gpqa_diamond", "domain": "science", "value": 40.0},
        {"benchmark": "ifeval", "domain": "chat", "value": 70.0},
    ]
    out = metrics.domain_averages(scores)
    assert out["math"] == pytest.approx(190 / 3)
    assert out["science"] == 40.0 and out["chat"] == 70.0 and "code" not in out
    assert out["overall"] == pytest.approx((190 / 3 + 40 + 70) / 3)
    # A micro average would differ: the macro rule must not weight math by its three benchmarks.
    assert out["overall"] != pytest.approx(sum(s["value"] for s in scores) / len(scores))
    assert out["benchmarks"]["math"] == ["math500", "aime24", "gsm8k"]
    by_name = metrics.domain_averages({s["benchmark"]: s for s in scores})
    assert by_name["overall"] == out["overall"]


def test_domain_averages_rejects_unknown_domain():
    with pytest.raises(GrloError, match="unknown domain"):
        metrics.domain_averages([{"benchmark": "x", "domain": "poetry", "value": 1.0}])


def test_overall_averages_with_standard_errors_match_a_simulation():
    scores = [
        {"benchmark": "math500", "domain": "math", "value": 80.0, "stderr": 2.0},
        {"benchmark": "aime24", "domain": "math", "value": 20.0, "stderr": 6.0},
        {"benchmark": "gpqa_diamond", "domain": "science", "value": 40.0, "stderr": 3.0},
    ]
    out = metrics.overall_averages(scores)
    assert out["overall"] == pytest.approx((50 + 40) / 2)
    assert out["mean_benchmarks"] == pytest.approx(140 / 3)
    # macro weights 1/4, 1/4, 1/2; flat weights 1/3 each
    assert out["overall_stderr"] == pytest.approx(math.sqrt((2 / 4) ** 2 + (6 / 4) ** 2 + (3 / 2) ** 2))
    assert out["mean_benchmarks_stderr"] == pytest.approx(math.sqrt(4 + 36 + 9) / 3)
    # Monte Carlo: draw each benchmark value from N(v, se) and check the spread of the overall
    import random

    rng = random.Random(0)
    draws = []
    for _ in range(20000):
        vals = [dict(s, value=rng.gauss(s["value"], s["stderr"])) for s in scores]
        draws.append(metrics.domain_averages(vals)["overall"])
    m = sum(draws) / len(draws)
    sd = math.sqrt(sum((d - m) ** 2 for d in draws) / (len(draws) - 1))
    assert sd == pytest.approx(out["overall_stderr"], rel=0.03)
    # a member without a standard error leaves both errors unknown, not 0
    scores[0]["stderr"] = None
    assert metrics.overall_averages(scores)["overall_stderr"] is None
    assert metrics.overall_averages([])["overall"] is None
