"""`grlo compare`: differences, standard errors and the paired bootstrap interval on shared problems."""

import json
import math

import pytest

from grlo.cli import main
from grlo.eval.metrics import avg_at_k
from grlo.report import compare


def write_run(root, model, bench, per_problem):
    """per_problem: {id: [sample scores]} -> scores/<model>/<bench>.json + .samples.jsonl as grlo score writes them."""
    d = root / "scores" / model
    d.mkdir(parents=True, exist_ok=True)
    samples = d / f"{bench}.samples.jsonl"
    samples.write_text("".join(json.dumps({"id": i, "scores": s}) + "\n" for i, s in per_problem.items()))
    value, se = avg_at_k(list(per_problem.values()))
    (d / f"{bench}.json").write_text(json.dumps({"benchmark": bench, "model": model, "domain": "math", "value": value,
                                                 "stderr": se, "n": len(per_problem), "samples": str(samples)}))


def test_paired_bootstrap_on_shared_problems(tmp_path):
    a = {f"p{i}": [1.0 if i % 2 else 0.0] for i in range(40)}
    b = {f"p{i}": [1.0 if i % 2 or i % 4 == 0 else 0.0] for i in range(40)}  # B also solves every 4th
    b["extra"] = [1.0]  # only in B: not paired
    write_run(tmp_path / "A", "m--base", "math500", a)
    write_run(tmp_path / "B", "m--base", "math500", b)
    rows = compare.compare(compare.side(tmp_path / "A", None, "A"), compare.side(tmp_path / "B", None, "B"))
    (r,) = rows
    assert r["n_shared"] == 40 and r["paired_diff"] == pytest.approx(25.0)
    d = [100.0 if i % 4 == 0 else 0.0 for i in range(40)]
    assert r["paired_stderr"] == pytest.approx(math.sqrt(sum((x - 25) ** 2 for x in d) / 39 / 40))
    assert r["ci_low"] < 25.0 < r["ci_high"] and r["ci_low"] > 0  # every resample keeps B >= A on each problem
    assert r["diff"] == pytest.approx(r["b"] - r["a"]) and r["diff_stderr"] == pytest.approx(
        math.hypot(r["a_stderr"], r["b_stderr"]))
    # same seed -> same interval; the bootstrap agrees with the normal interval to a few tenths of a point
    again = compare.compare(compare.side(tmp_path / "A", None, "A"), compare.side(tmp_path / "B", None, "B"))[0]
    assert (again["ci_low"], again["ci_high"]) == (r["ci_low"], r["ci_high"])
    assert r["ci_high"] - r["ci_low"] == pytest.approx(2 * 1.96 * r["paired_stderr"], rel=0.2)


def test_cli_two_models_of_one_run_and_errors(tmp_path, capsys):
    write_run(tmp_path, "x--base", "gsm8k", {"1": [0.0, 1.0], "2": [1.0, 1.0]})
    write_run(tmp_path, "y--custom", "gsm8k", {"1": [1.0, 1.0], "2": [1.0, 1.0]})
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(tmp_path), str(tmp_path), "--model-a", "x--base", "--model-b", "y--custom",
                 "--output", str(out), "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "gsm8k" in printed and "25" in printed and out.exists() and out.with_suffix(".md").exists()
    assert main(["compare", str(tmp_path), str(tmp_path / "nope")]) != 0
    assert "not a directory" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(tmp_path), "--model-a", "zzz"]) != 0
    assert "no scores for model 'zzz'" in capsys.readouterr().err
