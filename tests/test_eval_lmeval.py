"""lm-eval few-shot check: local smoke tasks reuse lm-eval's own definitions; the CLI end to end is slow."""

import json

import pytest

from grlo.eval import lmeval


def test_smoke_tasks_use_lm_eval_definitions_on_our_fixtures(tmp_path):
    from lm_eval.tasks import TaskManager, get_task_dict

    names = lmeval.write_smoke_tasks(tmp_path)
    tm = TaskManager(include_path=str(tmp_path))
    tasks = get_task_dict(list(names.values()), tm)
    gsm = tasks[names["gsm8k"]]
    docs = list(gsm.test_docs())
    assert len(docs) == 6 and gsm.doc_to_target(docs[0]) == "15"
    assert gsm.doc_to_text(docs[0]).startswith("Q: Mia has 12 apples")  # gsm8k-cot's own prompt format
    fs = gsm.config.fewshot_config
    assert len(fs["samples"] if isinstance(fs, dict) else fs.samples) == 8  # Wei et al. exemplars, lm-eval yaml
    math = tasks[names["math"]]
    mdocs = list(math.test_docs())
    assert len(mdocs) >= 12 and mdocs[1]["answer"] == "\\frac{11}{12}"  # minerva's normalised gold
    assert "Problem:" in math.doc_to_text(mdocs[0])


def test_metric_lookup():
    results = {"t": {"exact_match,strict-match": 0.5, "exact_match_stderr,strict-match": 0.1,
                     "exact_match,flexible-extract": 0.75}}
    assert lmeval._metric(results, "t", "exact_match,strict-match") == (50.0, 10.0)
    assert lmeval._metric(results, "t", "exact_match,flexible-extract") == (75.0, None)
    assert lmeval._metric(results, "missing", "exact_match,strict-match") == (None, None)


def test_settings_merge_config():
    s = lmeval.settings({"evaluation": {"lmeval": {"limit": 3, "tasks": {"gsm8k": {"task": "gsm8k", "num_fewshot": 5,
                                                                                    "metric": "exact_match,strict-match"}}}}})
    assert s["limit"] == 3 and s["tasks"]["gsm8k"]["num_fewshot"] == 5 and s["tasks"]["math"]["task"] == "minerva_math"


@pytest.mark.slow
def test_cli_smoke_end_to_end(tmp_path):
    tiny = pytest.importorskip("grlo.models.tiny")
    from grlo.cli import main

    model = tiny.build_tiny_policy(tmp_path / "policy", seed=0)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("mode: smoke\nevaluation:\n  lmeval: {limit: 2, max_gen_toks: 8, batch_size: 2}\n")
    out = tmp_path / "lmeval.json"
    assert main(["lmeval-fewshot", "--config", "config/config.yaml", "config/smoke.yaml", str(cfg),
                 "--model-dir", str(model), "--output", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert [r["benchmark"] for r in summary["rows"]] == ["gsm8k", "math"]
    assert all(r["n"] == 2 and 0.0 <= r["value"] <= 100.0 for r in summary["rows"])
    assert (tmp_path / "lmeval.csv").read_text().splitlines()[1].startswith("gsm8k,grlo_smoke_gsm8k_cot,4,")
