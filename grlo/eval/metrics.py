"""Evaluation metrics, defined once for every table.

- avg@k: per problem, the mean score over its k samples; the benchmark value is the mean over problems (percent).
  Its standard error is the standard error of the mean over problems, sqrt(var_ddof1(problem means) / n): it
  measures the spread over problems, the quantity that moves when a different problem set is drawn, and it
  shrinks with k only through the per-problem means.
- pass@k: the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), per problem, averaged.
- Domain and overall averages: a domain's value is the unweighted mean of its benchmarks' values; the overall
  average is the unweighted mean over domains (macro over domains), so a domain with many benchmarks (math)
  does not outweigh one with few (science). Only benchmarks present in the input count. Beside it, the mean over
  benchmarks (every benchmark weighs the same) is reported, since the macro mean lets a one-benchmark domain
  (GPQA for science) weigh a quarter of the overall.
- Standard error of an average: every average here is a fixed linear combination sum_b w_b * v_b of benchmark
  values computed on disjoint problem sets, so with independent benchmarks se = sqrt(sum_b w_b^2 * se_b^2)
  (w_b = 1 / (domains * benchmarks of b's domain) for the macro mean, 1 / benchmarks for the mean over
  benchmarks). It is None when any member lacks a standard error.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from grlo.errors import GrloError

DOMAINS = ("math", "science", "code", "chat")


def _check_scores(per_problem: Sequence[Sequence[float]]) -> None:
    if not per_problem:
        raise GrloError("no problems to average")
    for i, s in enumerate(per_problem):
        if len(s) == 0:
            raise GrloError(f"problem #{i} has no samples")


def avg_at_k(per_problem: Sequence[Sequence[float]]) -> tuple[float, float | None]:
    """(mean, stderr) in percent for scores in [0, 1]; stderr is None with a single problem."""
    _check_scores(per_problem)
    means = [sum(s) / len(s) for s in per_problem]
    return mean_stderr(means)


def mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (ddof=1) of values in [0, 1], both in percent."""
    n = len(values)
    if n == 0:
        raise GrloError("no values to average")
    mean = sum(values) / n
    if n < 2:
        return 100.0 * mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return 100.0 * mean, 100.0 * math.sqrt(var / n)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c are correct: 1 - C(n-c, k)/C(n, k)."""
    if not (0 <= c <= n) or k < 1 or k > n:
        raise GrloError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # Product form avoids huge binomials: prod_{i=n-c+1}^{n} (1 - k/i).
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(per_problem: Sequence[Sequence[float]], k: int) -> tuple[float, float | None]:
    """pass@k averaged over problems (percent) with its standard error; a sample counts as correct if score >= 1."""
    _check_scores(per_problem)
    vals = [pass_at_k(len(s), sum(1 for x in s if x >= 1.0), k) for s in per_problem]
    return mean_stderr(vals)


def domain_averages(scores: Iterable[Mapping] | Mapping[str, Mapping]) -> dict:
    """Macro averages from score summaries (dicts with at least "domain" and "value", as in scores/*.json).

    Accepts a list of summaries or a {benchmark: summary} mapping, all for ONE model. Returns
    {"math": x, "science": y, ..., "overall": z, "benchmarks": {domain: [names]}}; domains without any benchmark
    are absent, and "overall" is the mean over the present domains (None if there are none).
    """
    items = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    by_domain: dict[str, list[float]] = {}
    names: dict[str, list[str]] = {}
    for s in items:
        domain, value = s.get("domain"), s.get("value")
        if domain not in DOMAINS:
            raise GrloError(f"unknown domain {domain!r} (allowed: {', '.join(DOMAINS)})", field=str(s.get("benchmark")))
        if value is None:
            continue
        by_domain.setdefault(domain, []).append(float(value))
        names.setdefault(domain, []).append(str(s.get("benchmark")))
    out: dict = {d: sum(v) / len(v) for d, v in by_domain.items()}
    out["overall"] = sum(out[d] for d in by_domain) / len(by_domain) if by_domain else None
    out["benchmarks"] = names
    return out


def linear_stderr(weighted: Sequence[tuple[float, float | None]]) -> float | None:
    """Standard error of sum_i w_i * x_i for independent x_i with standard errors se_i: sqrt(sum w_i^2 se_i^2)."""
    if not weighted or any(se is None for _, se in weighted):
        return None
    return math.sqrt(sum((w * se) ** 2 for w, se in weighted))


def overall_averages(scores: Iterable[Mapping] | Mapping[str, Mapping]) -> dict:
    """The two overall means of one model's score summaries, each with its standard error.

    Returns {"overall", "overall_stderr"} (macro over domains, as domain_averages) and {"mean_benchmarks",
    "mean_benchmarks_stderr"} (unweighted over benchmarks); values None when no benchmark has a value.
    """
    items = [s for s in (scores.values() if isinstance(scores, Mapping) else scores) if s.get("value") is not None]
    if not items:
        return {"overall": None, "overall_stderr": None, "mean_benchmarks": None, "mean_benchmarks_stderr": None}
    avg = domain_averages(items)
    per_domain = {d: len(v) for d, v in avg["benchmarks"].items()}
    n_dom, n = len(per_domain), len(items)
    macro = [(1.0 / (n_dom * per_domain[s["domain"]]), s.get("stderr")) for s in items]
    flat = [(1.0 / n, s.get("stderr")) for s in items]
    return {"overall": avg["overall"], "overall_stderr": linear_stderr(macro),
            "mean_benchmarks": sum(float(s["value"]) for s in items) / n, "mean_benchmarks_stderr": linear_stderr(flat)}
