"""Known-answer row: reference solutions, written as each prompt asks, score 100 through `grlo score`."""

import json

import pytest

from grlo import config as C
from grlo.cli import main
from grlo.errors import GrloError
from grlo.eval import reference
from grlo.registry import spec as spec_mod

CFG = ["config/config.yaml", "config/smoke.yaml"]


def test_smoke_benchmarks_with_a_reference():
    cfg = C.load(CFG)
    assert reference.benchmarks_with_reference(cfg) == ["math500", "aime24", "gpqa_diamond", "humaneval_plus"]


@pytest.mark.parametrize("bench", ["math500", "aime24", "gpqa_diamond", "humaneval_plus", "gsm8k", "mbpp_plus",
                                   "amc23", "aime25"])
def test_reference_answers_score_100_through_grlo_score(tmp_path, bench):
    data_dir, gen_dir = tmp_path / "data", tmp_path / "generations" / reference.REFERENCE_MODEL
    overlay = tmp_path / "o.yaml"
    overlay.write_text(f"evaluation: {{benchmarks: [{bench}], known_answer_row: true}}\n")
    cfg = [*CFG, str(overlay)]
    assert main(["download-benchmark", "--config", *cfg, "--benchmark", bench, "--output",
                 str(data_dir / f"{bench}.jsonl")]) == 0
    assert main(["reference-answers", "--config", *cfg, "--benchmarks", bench, "--data-dir", str(data_dir),
                 "--output-dir", str(gen_dir)]) == 0
    meta = json.loads((gen_dir / f"{bench}.meta.json").read_text())
    out = tmp_path / "scores" / f"{bench}.json"
    assert main(["score", "--config", *cfg, "--benchmark", bench, "--generations", str(gen_dir / f"{bench}.jsonl"),
                 "--data", str(data_dir / f"{bench}.jsonl"), "--output", str(out), "--workers", "1"]) == 0
    summary = json.loads(out.read_text())
    assert summary["value"] == 100.0, summary
    assert summary["model"] == reference.REFERENCE_MODEL and summary["no_answer_share"] == 0.0
    assert summary["protocol"]["assistant_prefill"] == meta["assistant_prefill"]
    if bench in ("humaneval_plus", "mbpp_plus"):  # the EvalPlus prefill is exercised: completions start in the fence
        assert meta["assistant_prefill"].endswith("```python\n")
        first = json.loads((gen_dir / f"{bench}.jsonl").read_text().splitlines()[0])["completions"][0]
        assert not first.startswith("```") and first.rstrip().endswith("```")


def test_a_row_without_reference_is_one_line_error():
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke"})
    with pytest.raises(GrloError, match="no reference answer"):
        reference.completion(spec, {"id": "x", "answer": None})
    assert reference.completion(spec, {"id": "x", "answer": "\\frac{1}{2}"}) == "The final answer is \\boxed{\\frac{1}{2}}."
