"""Evaluate any checkpoint: evaluation.custom_models adds a model (local path or pinned hub id) by config alone."""

import pytest

from grlo import config as C
from grlo import registry
from grlo import workflow as W
from grlo.errors import GrloError
from grlo.report import tables
from grlo.report.paper_refs import PaperRefs

CFG = ["config/config.yaml", "config/smoke.yaml"]
REV = "0123456789abcdef0123456789abcdef01234567"


def load(tmp_path, yaml_text):
    p = tmp_path / "custom.yaml"
    p.write_text(yaml_text)
    return C.load([*CFG, str(p)])


@pytest.fixture(autouse=True)
def _reset_registry():
    yield
    registry.set_custom_models({})


def test_custom_models_resolve_and_get_rows_in_tables_1_and_3(tmp_path):
    cfg = load(tmp_path, "evaluation:\n  custom_models:\n"
                         "    - {name: my-sft, hub_id: org/my-sft, revision: " + REV + ", turn_end: '<|im_end|>',\n"
                         "       chat: {enable_thinking: false}, sampling: {temperature: 0.6, max_tokens: 77}}\n"
                         "    - {name: ckpt, path: /abs/ckpt, turn_end: null, label: My checkpoint}\n")
    assert W.eval_models(cfg, "custom") == ["my-sft--custom", "ckpt--custom"]
    assert "my-sft--custom" in W.eval_models(cfg)
    hub, local = W.resolve_eval_model(cfg, "my-sft--custom"), W.resolve_eval_model(cfg, "ckpt--custom")
    assert hub["path"] == "models/my-sft" and hub["chat"] == {"enable_thinking": False}
    assert local["path"] == "/abs/ckpt" and local["stage"] is None
    assert registry.source(registry.model("my-sft"), "paper")["revision"] == REV
    from grlo.generation import eval_settings

    s, chat, _ = eval_settings(cfg, "my-sft--custom", "math500")
    assert s.temperature == 0.6 and "<|im_end|>" in s.stop_tokens and chat == {"enable_thinking": False}
    assert s.max_tokens == 32  # the smoke override of math500 still wins over the model's own budget
    for t in ("table1", "table3"):
        assert "scores/ckpt--custom/math500.json" in " ".join(W.table_scores(cfg, t))
    scores = {("ckpt--custom", "math500"): {"benchmark": "math500", "model": "ckpt--custom", "domain": "math",
                                             "value": 12.5, "stderr": 1.0},
              ("qwen3-4b-base--grlo", "math500"): {"benchmark": "math500", "model": "qwen3-4b-base--grlo",
                                                    "domain": "math", "value": 20.0, "stderr": 1.0}}
    t1 = tables.build("table1", cfg, scores, PaperRefs())
    row = {r["model"]: r for r in t1["rows"]}["ckpt--custom"]
    assert row["math500"] == 12.5 and row["label"] == "My checkpoint"
    t3 = tables.build("table3", cfg, scores, PaperRefs())
    m = {r["benchmark"]: r for r in t3["rows"]}["math500"]
    assert m["ckpt--custom"] == 12.5 and m["diff_vs_ckpt"] == pytest.approx(7.5)
    assert m["diff_vs_ckpt_stderr"] == pytest.approx(2 ** 0.5)
    assert "diff_vs_my-sft" in t3["columns"] and m["diff_vs_my-sft"] is None


@pytest.mark.parametrize("entry,field", [
    ("{name: a, path: /x}", "turn_end"),
    ("{name: a, path: /x, hub_id: o/r, revision: " + REV + ", turn_end: null}", "custom_models[0]"),
    ("{name: a, hub_id: o/r, revision: main, turn_end: null}", "revision"),
    ("{name: A--b, path: /x, turn_end: null}", "name"),
    ("{name: a, path: /x, turn_end: null, sampling: {temp: 1}}", "sampling.temp"),
    ("{name: qwen3-4b, path: /x, turn_end: null}", "custom_models"),
])
def test_bad_custom_entries_are_one_line_errors(tmp_path, entry, field):
    with pytest.raises(GrloError) as e:
        load(tmp_path, f"evaluation:\n  custom_models:\n    - {entry}\n")
    assert field in str(e.value) and "\n" not in str(e.value)


def test_smoke_config_adds_a_custom_model_from_the_outdir():
    cfg = C.load(CFG)
    assert W.eval_models(cfg, "custom") == ["smollm2-local--custom"]
    assert W.resolve_eval_model(cfg, "smollm2-local--custom")["path"] == "models/qwen3-4b-base"
