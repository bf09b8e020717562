"""Integration (session smoke run): the known-answer row scores 100 wherever a reference exists, so a scorer that
cannot award credit fails CI; a model added by config alone (evaluation.custom_models) has rows in tables 1 and 3;
table 4 carries the base and RLVR columns; every cell says n, k, se and the truncated / no-answer shares."""

import csv
import io
import json

import pytest

from grlo import config as C
from grlo.eval.reference import REFERENCE_MODEL, benchmarks_with_reference
from grlo.models.custom import model_ids


def _rows(path):
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.mark.integration
def test_known_answer_row_scores_100(smoke_outdir):
    from conftest import smoke_config

    cfg = smoke_config()
    benches = benchmarks_with_reference(cfg)
    assert set(benches) >= {"math500", "gpqa_diamond", "humaneval_plus"}
    for b in benches:
        s = json.loads((smoke_outdir / "scores" / REFERENCE_MODEL / f"{b}.json").read_text())
        assert s["value"] == 100.0, (b, s["value"], s["samples"])
    row = {r["model"]: r for r in _rows(smoke_outdir / "results" / "table1.csv")}[REFERENCE_MODEL]
    for b in C.get(cfg, "evaluation.benchmarks"):
        assert row[b] == ("100" if b in benches else ""), b  # no reference (IFEval, AlpacaEval, LCB): not run


@pytest.mark.integration
def test_custom_model_rows_table4_columns_and_cell_diagnostics(smoke_outdir):
    from conftest import smoke_config

    cfg = smoke_config()
    res = smoke_outdir / "results"
    (custom,) = model_ids(cfg)
    t1 = {r["model"]: r for r in _rows(res / "table1.csv")}
    assert t1[custom]["math500"] != "" and t1[custom]["overall"] != ""
    t3 = _rows(res / "table3.csv")
    assert custom in t3[0] and all(r[custom] != "" for r in t3 if r["benchmark"] == "math500")
    t4 = {r["benchmark"]: r for r in _rows(res / "table4.csv")}
    assert t4["math500"]["base"] != "" and t4["math500"]["rlvr"] != ""
    cells = [c for c in _rows(res / "table1.cells.csv") if c["model"] == "qwen3-4b-base--base"]
    for c in cells:
        assert c["status"] == "scored" and c["n"] and c["k"] and c["truncated_share"] != "", c
    assert {c["benchmark"] for c in cells if c["no_answer_share"] != ""} >= {"math500", "gpqa_diamond"}
    assert "SmolLM2-135M-Instruct for Qwen3-4B-Base" in (res / "table1.md").read_text()
