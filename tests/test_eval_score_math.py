import json

import pytest

from grlo.cli import main
from grlo.data import benchmarks
from grlo.errors import GrloError
from grlo.registry import spec as spec_mod
from grlo.eval.score import load_generations, score_generations
from grlo.eval.thinking import split_think

CFG = ["config/config.yaml", "config/smoke.yaml"]


@pytest.fixture(scope="module")
def math_rows():
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke"})
    return benchmarks.load_normalised(spec)


def test_math_fixture_is_boxed_and_answers_self_verify(math_rows):
    from grlo.rewards.math import grade

    assert len(math_rows) >= 12
    forms = " ".join(r["answer"] for r in math_rows)
    for token in ("\\frac", "\\sqrt", "\\infty", "[", "\\pi"):
        assert token in forms
    for r in math_rows:
        assert r["prompt"].endswith("put your final answer within \\boxed{}.")
        assert grade(r["answer"], f"The answer is $\\boxed{{{r['answer']}}}$.")["correct"], r["id"]


def test_split_think():
    assert split_think("<think>a b</think>\n\nx") == ("a b", "x")
    assert split_think("reasoning only</think>ans") == ("reasoning only", "ans")
    assert split_think("<think>cut off while thinking \\boxed{5}") == ("cut off while thinking \\boxed{5}", "")
    assert split_think("plain \\boxed{5}") == (None, "plain \\boxed{5}")


def _write_gens(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_score_cli_end_to_end(tmp_path, math_rows, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parent.parent)
    data = tmp_path / "data" / "math500.jsonl"
    assert main(["download-benchmark", "--config", *CFG, "--benchmark", "math500", "--output", str(data)]) == 0
    rows = [json.loads(l) for l in data.read_text().splitlines()][:12]
    limit = tmp_path / "limit.yaml"  # pin the row limit here: the smoke config's own limit may change
    limit.write_text("evaluation: {overrides: {math500: {limit: 12}}}\n")
    gens = tmp_path / "generations" / "tiny--base" / "math500.jsonl"
    gens.parent.mkdir(parents=True)
    g = []
    for i, r in enumerate(rows):
        right = f"<think>let me think</think>so the answer is \\boxed{{{r['answer']}}}"
        wrong = "I am not sure." if i % 2 else "\\boxed{123456}"
        # 3 samples: problems 0..5 get 2/3 right, 6..11 get 1/3 right
        g.append({"id": r["id"], "completions": [right, right if i < 6 else wrong, wrong]})
    _write_gens(gens, g)
    out = tmp_path / "scores" / "tiny--base" / "math500.json"
    assert main(["score", "--config", *CFG, str(limit), "--benchmark", "math500", "--generations", str(gens),
                 "--output", str(out), "--data", str(data)]) == 0
    summary = json.loads(out.read_text())
    expected = 100 * (6 * 2 / 3 + 6 * 1 / 3) / 12
    assert summary["value"] == pytest.approx(expected)
    assert summary["n"] == 12 and summary["k"] == 3 and summary["model"] == "tiny--base"
    assert summary["domain"] == "math" and summary["metric"] == "avg@k" and summary["stderr"] > 0
    # 6 problems with 2/3 correct, 6 with 1/3: pass@2 = mean(1 - C(n-c,2)/C(3,2))
    assert summary["pass_at_k"]["1"] == pytest.approx(expected)
    assert summary["pass_at_k"]["2"] == pytest.approx(100 * (6 * 1.0 + 6 * (1 - 1 / 3)) / 12)
    assert summary["pass_at_k"]["3"] == pytest.approx(100.0)
    samples = [json.loads(l) for l in (tmp_path / "scores" / "tiny--base" / "math500.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12
    assert samples[1]["verdicts"] == ["correct", "correct", "no_answer"]
    s6 = samples[6]
    assert s6["verdicts"] == ["correct", "wrong", "wrong"] and s6["extracted"][1:] == ["123456", "123456"]
    assert s6["extracted"][0] == rows[6]["answer"]
    assert s6["think_chars"] == [len("let me think"), 0, 0]
    assert set(s6) >= {"id", "completions", "extracted", "scores", "verdicts", "time_s"}


def test_score_rejects_missing_and_unknown_ids(math_rows):
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke"})
    gens = [{"id": r["id"], "completions": ["\\boxed{1}"]} for r in math_rows[:3]]
    with pytest.raises(GrloError, match="have no generation"):
        score_generations(spec, math_rows, gens)
    summary, samples = score_generations(spec, math_rows, gens, partial=True)
    assert summary["n"] == 3 and summary["n_missing"] == len(math_rows) - 3
    with pytest.raises(GrloError, match="not a problem"):
        score_generations(spec, math_rows, [{"id": "nope", "completions": ["x"]}], partial=True)


def test_score_respects_limit(math_rows):
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke", "evaluation": {"overrides": {"math500": {"limit": 4}}}})
    gens = [{"id": r["id"], "completions": [f"\\boxed{{{r['answer']}}}"]} for r in math_rows]
    summary, samples = score_generations(spec, math_rows, gens)
    assert summary["n"] == 4 and summary["value"] == 100.0
    assert [s["id"] for s in samples] == [r["id"] for r in math_rows[:4]]


def test_load_generations_errors(tmp_path):
    p = tmp_path / "g.jsonl"
    _write_gens(p, [{"id": 1, "completions": ["a"]}, {"id": 1, "completions": ["b"]}])
    with pytest.raises(GrloError, match="duplicate id"):
        load_generations(p)
    _write_gens(p, [{"id": 1, "completions": []}])
    with pytest.raises(GrloError, match="non-empty list"):
        load_generations(p)


def test_paper_mode_download_uses_pinned_revision(tmp_path, monkeypatch):
    """Paper path logic without network: huggingface_hub is mocked; the sha256 check must bite."""
    import huggingface_hub

    src = tmp_path / "test.jsonl"
    src.write_text(json.dumps({"unique_id": "test/algebra/1.json", "problem": "1+1?", "answer": "2"}) + "\n")
    calls = []

    def fake_download(repo, filename, repo_type=None, revision=None):
        calls.append((repo, filename, repo_type, revision))
        return str(src)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    spec = spec_mod.benchmark_spec("math500", {"mode": "paper"})
    spec["source"].update(revision="abc123", sha256=None, count=None)  # the registry's public pins are for the real file
    rows, prov = benchmarks.fetch_raw(spec)
    assert calls == [("HuggingFaceH4/MATH-500", "test.jsonl", "dataset", "abc123")]
    assert prov["revision"] == "abc123" and len(prov["sha256"]) == 64
    norm = benchmarks.normalise(rows, spec)
    assert norm[0]["id"] == "test/algebra/1.json" and norm[0]["answer"] == "2"
    spec["source"]["sha256"] = "0" * 64
    with pytest.raises(GrloError, match="checksum mismatch"):
        benchmarks.fetch_raw(spec)


def test_gated_dataset_gives_access_instructions(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    class Response:  # the minimum huggingface_hub's HTTP errors read
        headers: dict = {}
        status_code = 403
        request = None

    def gated(*a, **k):
        raise GatedRepoError("gated", response=Response())

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    spec = spec_mod.benchmark_spec("gpqa_diamond", {"mode": "paper"})
    spec["source"]["revision"] = "abc"
    with pytest.raises(GrloError, match="gated.*accept its terms.*HF_TOKEN"):
        benchmarks.fetch_raw(spec)


def test_every_registry_benchmark_has_the_required_fields_and_a_smoke_source():
    from grlo.registry import templates
    from grlo.eval.scorers import KINDS

    reg = spec_mod.registry()
    assert set(reg) >= {"math500", "aime24", "aime25", "amc23", "gsm8k", "gpqa_diamond", "humaneval_plus",
                        "mbpp_plus", "livecodebench", "alpacaeval2", "ifeval"}
    for name, entry in reg.items():
        assert entry["domain"] in ("math", "science", "code", "chat"), name
        assert entry["scorer"] in KINDS and entry["prompt_template"] in templates.TEMPLATES, name
        assert set(entry["sampling"]) == {"temperature", "top_p", "top_k", "k", "max_tokens"}, name
        assert {"paper", "smoke"} <= set(entry["source"]), name
        rows = benchmarks.load_normalised(spec_mod.benchmark_spec(name, {"mode": "smoke"}))
        assert 4 <= len(rows) <= 14 and all(r["prompt"] and r["id"] for r in rows), name


def test_think_tokens_counted_with_a_tokenizer(tmp_path, math_rows):
    from transformers import AutoTokenizer

    from grlo.models.tiny import build_tiny_policy

    model_dir = build_tiny_policy(tmp_path / "policy", seed=0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    think = "let me think about fractions"
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke"})
    r = math_rows[0]
    gens = [{"id": r["id"], "completions": [f"<think>{think}</think>\\boxed{{{r['answer']}}}", "\\boxed{0}"]}]
    summary, samples = score_generations(spec, math_rows, gens, partial=True, tokenizer=str(model_dir))
    expected = len(tok(think, add_special_tokens=False)["input_ids"])
    assert samples[0]["think_tokens"] == [expected, 0] and expected > 0
    assert samples[0]["scores"] == [1.0, 0.0]


def _cli_dataset(tmp_path, rows):
    data = tmp_path / "data" / "benchmarks" / "math500.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    _write_gens(data, rows)
    return data


def test_escaped_dollar_gold_gets_credit_through_grlo_score(tmp_path):
    """MATH-500 golds `\\$18.90`, `\\$36`, `\\$32,\\!348` match the boxed number (with or without the dollar)."""
    rows = [{"id": f"p{i}", "problem": "q", "prompt": "q", "answer": a}
            for i, a in enumerate(["\\$18.90", "\\$36", "\\$32,\\!348"])]
    data = _cli_dataset(tmp_path, rows)
    gens = tmp_path / "generations" / "m--base" / "math500.jsonl"
    gens.parent.mkdir(parents=True)
    _write_gens(gens, [{"id": "p0", "completions": ["\\boxed{18.90}", "\\boxed{\\$18.90}", "\\boxed{18.91}"],
                        "finish_reasons": ["stop", "stop", "length"]},
                       {"id": "p1", "completions": ["\\boxed{36}", "\\boxed{\\text{\\$}36}", "no box"],
                        "finish_reasons": ["stop", "stop", "length"]},
                       {"id": "p2", "completions": ["\\boxed{32348}", "\\boxed{32,348}", "\\boxed{\\$32,\\!348}"],
                        "finish_reasons": ["stop", "stop", "stop"]}])
    limit = tmp_path / "limit.yaml"
    limit.write_text("evaluation: {overrides: {math500: {limit: 3, k: 3}}}\n")
    out = tmp_path / "scores" / "m--base" / "math500.json"
    assert main(["score", "--config", *CFG, str(limit), "--benchmark", "math500", "--generations", str(gens),
                 "--output", str(out), "--data", str(data)]) == 0
    summary = json.loads(out.read_text())
    samples = [json.loads(l) for l in out.with_name("math500.samples.jsonl").read_text().splitlines()]
    assert [s["verdicts"] for s in samples] == [["correct", "correct", "wrong"], ["correct", "correct", "no_answer"],
                                               ["correct"] * 3]
    assert summary["value"] == pytest.approx(100 * 7 / 9)
    assert summary["truncated_share"] == pytest.approx(2 / 9) and summary["no_answer_share"] == pytest.approx(1 / 9)
    assert summary["n_samples"] == 9


def test_score_without_data_reads_the_prepared_file_or_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"outdir: {tmp_path / 'run'}\nevaluation: {{overrides: {{math500: {{limit: 1, k: 1}}}}}}\n")
    repo = __import__("pathlib").Path(__file__).resolve().parent.parent
    cfgs = [str(repo / c) for c in CFG] + [str(cfg)]
    gens = tmp_path / "gens.jsonl"
    _write_gens(gens, [{"id": "p0", "completions": ["\\boxed{2}"]}])
    out = tmp_path / "s.json"
    args = ["score", "--config", *cfgs, "--benchmark", "math500", "--generations", str(gens), "--output", str(out)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "grlo download-benchmark" in err and "run/data/benchmarks/math500.jsonl" in err and not out.exists()
    prepared = tmp_path / "run" / "data" / "benchmarks" / "math500.jsonl"
    prepared.parent.mkdir(parents=True)
    _write_gens(prepared, [{"id": "p0", "problem": "1+1", "prompt": "1+1", "answer": "2"}])
    (prepared.parent / "math500.meta.json").write_text(json.dumps({"source": {"kind": "fixture", "sha256": "abc"}}))
    assert main(args) == 0
    summary = json.loads(out.read_text())
    assert summary["value"] == 100.0 and summary["data"] == str(prepared)
    assert summary["data_source"] == {"kind": "fixture", "sha256": "abc"}


def test_score_output_directory_is_one_line_and_writes_nothing(tmp_path, capsys):
    gens = tmp_path / "gens.jsonl"
    _write_gens(gens, [{"id": "p0", "completions": ["\\boxed{2}"]}])
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["score", "--config", *CFG, "--benchmark", "math500", "--generations", str(gens),
                 "--output", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_prefill_is_put_back_before_extraction(tmp_path):
    """EvalPlus-style prefill: the completion continues the opened ```python fence; scoring sees the whole turn."""
    from grlo.registry import templates

    pre = templates.prefill("code_evalplus")
    assert pre.startswith("Below is a Python script with a self-contained function") and pre.endswith("```python\n")
    assert templates.prefill("math_boxed") == ""
    spec = spec_mod.benchmark_spec("math500", {"mode": "smoke"})
    rows = [{"id": "p0", "problem": "q", "prompt": "q", "answer": "5"}]
    gens = [{"id": "p0", "completions": ["5}"]}]
    assert score_generations(spec, rows, gens)[0]["value"] == 0.0
    summary, samples = score_generations(spec, rows, gens, prefill="\\boxed{")
    assert summary["value"] == 100.0 and samples[0]["completions"] == ["5}"] and samples[0]["extracted"] == ["5"]
