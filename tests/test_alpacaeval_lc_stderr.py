"""The standard error of AlpacaEval's length-controlled win rate in smoke mode (issue 19: it used to be 0).

alpaca-eval's own `lc_standard_error` is the standard error of the mean of the GLM's per-instruction predictions at
zero length difference; with smoke mode's instruction difficulty 0 everywhere every prediction is the same, so it is
0 by construction. The substitute (deviation `alpacaeval-smoke-lc`) is the delta-method standard error of the same
LC win rate under the sandwich (HC1) covariance of the fitted GLM; here it is checked against a closed form and
against a fractional logistic regression fitted by hand (Newton's method) in this file.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grlo.eval.deviations import DEVIATIONS
from grlo.eval.scorers import alpacaeval


def _frame(ref_len, out_len, prefs) -> pd.DataFrame:
    n = len(prefs)
    return pd.DataFrame({"index": range(n), "instruction": [f"q{i}" for i in range(n)],
                         "output_1": ["r" * int(x) for x in ref_len], "output_2": ["o" * int(x) for x in out_len],
                         "generator_1": "reference", "generator_2": "m", "preference": prefs, "annotator": "x"})


def test_without_a_length_term_it_is_the_standard_error_of_the_mean_preference():
    """Intercept-only GLM at the mean preference: HC1 sandwich + delta method = sd(y, ddof=1) / sqrt(n)."""
    rng = np.random.default_rng(1)
    prefs = 1 + rng.random(12)
    y = prefs - 1
    weights = {alpacaeval.LEN_COL: 0.0, alpacaeval.BASE_COL: math.log(y.mean() / (1 - y.mean()))}
    se = alpacaeval.lc_sandwich_stderr(_frame(rng.integers(10, 90, 12), rng.integers(10, 90, 12), prefs), weights)
    assert se == pytest.approx(100 * y.std(ddof=1) / math.sqrt(len(y)), rel=1e-9)
    # fewer than two judged instructions: unknown, not 0
    assert alpacaeval.lc_sandwich_stderr(_frame([5, 9], [7, 3], [1.5, float("nan")]), weights) is None


def _hand_fit(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(LC win rate, its standard error), both x 100: logit p = a z + b fitted to fractional y by Newton's method,
    LC = sigmoid(b) (zero length difference), SE by the delta method with the HC1 sandwich covariance."""
    X = np.column_stack([z, np.ones_like(z)])
    beta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ beta))
        beta += np.linalg.solve((X * (p * (1 - p))[:, None]).T @ X, X.T @ (y - p))
    p = 1 / (1 + np.exp(-X @ beta))
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X)
    cov = bread @ ((X * ((y - p) ** 2)[:, None]).T @ X) @ bread * len(y) / (len(y) - 2)
    lc = 1 / (1 + math.exp(-beta[1]))
    return 100 * lc, 100 * lc * (1 - lc) * math.sqrt(cov[1, 1])


def test_smoke_scoring_reports_the_lc_standard_error_of_a_hand_fit():
    """The smoke path end to end (scorer, alpaca-eval's GLM fit): a judge that prefers the longer output; the LC
    win rate and its standard error match a hand fit of the same GLM (alpaca-eval's fit is L1-penalised with a
    cross-validated strength, hence the tolerance). The old scorer wrote 0."""
    rng = np.random.default_rng(7)
    n = 120
    ref_len, out_len = rng.integers(100, 900, n), rng.integers(100, 900, n)
    delta = (ref_len - out_len).astype(float)
    z = np.tanh(delta / delta.std(ddof=1))
    y = 1 / (1 + np.exp(-(0.4 - 2.0 * z + rng.normal(0, 0.7, n))))
    problems = [{"id": str(i), "index": i, "problem": f"q{i}", "reference": "r" * int(ref_len[i])} for i in range(n)]
    completions = [["o" * int(out_len[i])] for i in range(n)]
    res = alpacaeval.score({}, problems, completions, {"config": {"mode": "smoke"}, "model": "m",
                                                       "judge_fn": lambda refs, outs: list(1 + y)})
    s = res.summary
    lc, se = _hand_fit(z, y)
    assert s["lc_offline_substitute"] is True and s["value"] == pytest.approx(lc, abs=0.2)
    assert s["stderr"] == pytest.approx(se, rel=0.02) and s["stderr"] > 1.0
    # the raw win rate's standard error is a different number: the length term explains part of the spread
    assert s["win_rate_stderr"] > 1.2 * s["stderr"]


def test_the_substitute_is_declared_as_a_deviation():
    row = next(d for d in DEVIATIONS if d["id"] == "alpacaeval-smoke-lc")
    assert "sandwich" in row["ours"] and "lc_standard_error" in row["official"]
