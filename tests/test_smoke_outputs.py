"""Integration (session smoke run, tests/conftest.py smoke_outdir): what the smoke tables and claims say, read back
against the config and the score files: each table's exact row and column sets, every value in its range, the
averages equal to the score files' values, the known-answer row at 100, and the claims' verdict set. (CSV cells are
written with 4 decimals, booleans as true/false: grlo.report.common.fmt.)"""

import csv
import io
import json
import math

import pytest

from grlo import config as C
from grlo import registry
from grlo.eval.reference import REFERENCE_MODEL, benchmarks_with_reference
from grlo.models.custom import model_ids
from grlo.report.claims import NOT_RUN, SMOKE
from grlo.report.common import DOMAIN_ORDER
from grlo.report.tables import DEFAULT_COMPETITION_MATH

pytestmark = pytest.mark.integration
OVERALL = ["overall", "overall_stderr", "mean_benchmarks", "mean_benchmarks_stderr"]
CLAIMS = ["backbone", "avg_base", "avg_grlo", "grlo_prompts", "grlo_gpu_hours", "data_ratio", "compute_ratio",
          "vs_released", "grlo_rlvr_gain"]


def _rows(path):
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    return reader.fieldnames, list(reader)


def _num(x):
    return None if x in ("", None) else float(x)


@pytest.fixture(scope="module")
def smoke(smoke_outdir):
    from conftest import smoke_config

    cfg = smoke_config()
    benches = C.get(cfg, "evaluation.benchmarks")
    domains = {b: registry.benchmark(b)["domain"] for b in benches}
    avg = [f"avg_{d}" for d in DOMAIN_ORDER if d in domains.values()]
    scores = {}
    for p in (smoke_outdir / "scores").glob("*/*.json"):
        if not p.name.endswith(".samples.json"):
            scores[(p.parent.name, p.stem)] = json.loads(p.read_text())
    return {"cfg": cfg, "benches": benches, "domains": domains, "avg": avg, "scores": scores,
            "res": smoke_outdir / "results", "out": smoke_outdir}


def test_table1_rows_columns_ranges_and_averages(smoke):
    cfg, benches, res = smoke["cfg"], smoke["benches"], smoke["res"]
    primary = C.get(cfg, "backbones.primary")
    cols, rows = _rows(res / "table1.csv")
    assert cols == ["model", "label", *benches, *smoke["avg"], *OVERALL, "paper_overall", "paper_source"]
    models = ([f"{primary}--{v}" for v in C.get(cfg, "evaluation.variants")] + C.get(cfg, "evaluation.released")
              + model_ids(cfg) + [REFERENCE_MODEL])
    assert [r["model"] for r in rows] == models
    ref_benches = set(benchmarks_with_reference(cfg))
    for r in rows:
        m = r["model"]
        for b in benches:
            v, s = _num(r[b]), smoke["scores"].get((m, b))
            if m == REFERENCE_MODEL:
                assert v == (100.0 if b in ref_benches else None), (b, v)
                continue
            assert s is not None and v is not None, (m, b)  # every model of the smoke run scores every benchmark
            assert 0.0 <= v <= 100.0 and v == pytest.approx(s["value"], abs=0.01), (m, b, v)
        if m == REFERENCE_MODEL:
            continue
        # domain averages: unweighted over a domain's benchmarks; overall: over domains; mean over benchmarks
        dom_avg = {}
        for d in {smoke["domains"][b] for b in benches}:
            members = [smoke["scores"][(m, b)]["value"] for b in benches if smoke["domains"][b] == d]
            dom_avg[d] = sum(members) / len(members)
            assert _num(r[f"avg_{d}"]) == pytest.approx(dom_avg[d], abs=0.01), (m, d)
        assert _num(r["overall"]) == pytest.approx(sum(dom_avg.values()) / len(dom_avg), abs=0.01), m
        assert _num(r["mean_benchmarks"]) == pytest.approx(
            sum(smoke["scores"][(m, b)]["value"] for b in benches) / len(benches), abs=0.01), m
        for se in ("overall_stderr", "mean_benchmarks_stderr"):  # empty when a member has no standard error
            assert r[se] == "" or 0.0 <= _num(r[se]) <= 50.0, (m, se, r[se])
    # the abstract's overall average is shown for the two models it reports; smoke numbers do not change it
    paper = {r["model"]: _num(r["paper_overall"]) for r in rows}
    assert paper[f"{primary}--base"] is not None and paper[f"{primary}--grlo"] is not None
    assert paper[REFERENCE_MODEL] is None


def test_table1_cells_one_per_model_and_benchmark(smoke):
    cols, cells = _rows(smoke["res"] / "table1.cells.csv")
    _, t1 = _rows(smoke["res"] / "table1.csv")
    assert [(c["model"], c["benchmark"]) for c in cells] == [(r["model"], b) for r in t1 for b in smoke["benches"]]
    for c in cells:
        assert c["status"] in ("scored", "not run") and c["domain"] == smoke["domains"][c["benchmark"]]
        if c["status"] == "scored":
            assert 0 < int(c["n"]) and 1 <= int(c["k"]) and 0.0 <= float(c["value"]) <= 100.0, c
            for share in ("truncated_share", "no_answer_share"):
                assert c[share] == "" or 0.0 <= float(c[share]) <= 1.0, (c["model"], c["benchmark"], share)
        else:
            assert c["model"] == REFERENCE_MODEL and c["value"] == ""


def test_table3_and_table4_rows_columns_and_differences(smoke):
    cfg, benches = smoke["cfg"], smoke["benches"]
    primary = C.get(cfg, "backbones.primary")
    keys = [*benches, *smoke["avg"], "overall"]
    _, t1 = _rows(smoke["res"] / "table1.csv")
    t1 = {r["model"]: r for r in t1}
    cols, t3 = _rows(smoke["res"] / "table3.csv")
    released, custom = C.get(cfg, "evaluation.released"), model_ids(cfg)
    expect = ["benchmark", "label", "grlo"]
    for m in released:
        t = m.partition("--")[2]
        expect += [m, f"diff_vs_{t}", f"diff_vs_{t}_stderr", f"qwen3_report_{t}"]
    for m in custom:
        t = m.partition("--")[0]
        expect += [m, f"diff_vs_{t}", f"diff_vs_{t}_stderr"]
    assert cols == expect
    assert [r["benchmark"] for r in t3] == keys
    for r in t3:
        k = r["benchmark"]
        assert _num(r["grlo"]) == pytest.approx(_num(t1[f"{primary}--grlo"][k]), abs=0.01)
        for m in [*released, *custom]:
            t = m.partition("--")[2] if m in released else m.partition("--")[0]
            assert _num(r[m]) == pytest.approx(_num(t1[m][k]), abs=0.01), (k, m)
            assert _num(r[f"diff_vs_{t}"]) == pytest.approx(_num(r["grlo"]) - _num(r[m]), abs=0.02), (k, m)
            assert r[f"diff_vs_{t}_stderr"] == "" or _num(r[f"diff_vs_{t}_stderr"]) >= 0.0
    cols, t4 = _rows(smoke["res"] / "table4.csv")
    assert cols == ["benchmark", "label", "competition_math", "base", "grlo", "rlvr", "grlo-rlvr", "gain",
                    "gain_stderr"]
    assert [r["benchmark"] for r in t4] == keys
    comp = set(C.get(cfg, "report.competition_math") or DEFAULT_COMPETITION_MATH)
    for r in t4:
        k = r["benchmark"]
        assert r["competition_math"] == ((str(k in comp).lower()) if k in benches else "")  # CSV booleans
        for v in ("base", "grlo", "rlvr", "grlo-rlvr"):
            assert _num(r[v]) == pytest.approx(_num(t1[f"{primary}--{v}"][k]), abs=0.01), (k, v)
        assert _num(r["gain"]) == pytest.approx(_num(r["grlo-rlvr"]) - _num(r["grlo"]), abs=0.02), k


def test_table2_and_table5(smoke):
    cols, t2 = _rows(smoke["res"] / "table2.csv")
    assert cols[:4] == ["run", "stage", "prompts", "gpu_hours"] and "certainty" in cols
    stages = [r["stage"] for r in t2]
    assert stages[:2] == ["grlo", "rlvr"] and set(stages) <= {"grlo", "rlvr", "grlo-rlvr"}
    stats = json.loads((smoke["out"] / "data" / "prompts" / "qwen3-4b-base" / "stats.json").read_text())
    grlo = t2[0]
    assert grlo["certainty"] == "measured" and int(grlo["prompts"]) > 0
    assert int(grlo["prompts"]) == stats["count"]
    for r in t2:
        if r["certainty"] == "measured":
            assert _num(r["gpu_hours"]) == 0.0 and _num(r["cpu_hours"]) >= 0.0, r  # a CPU run (4 decimals)
            assert _num(r["wall_hours"]) >= 0.0
    cols, t5 = _rows(smoke["res"] / "table5.csv")
    assert cols == ["backbone", "model", "label", *smoke["benches"], *smoke["avg"], "overall", "overall_gain_vs_base"]
    assert t5 == []  # backbones.extra is empty in the smoke config
    assert C.get(smoke["cfg"], "backbones.extra") == []


def test_claims_rows_and_verdicts(smoke):
    cols, rows = _rows(smoke["res"] / "claims.csv")
    assert cols == ["claim", "quantity", "paper", "paper_value", "ours", "tolerance", "rule", "verdict", "evidence",
                    "paper_source"]
    assert [r["claim"] for r in rows] == CLAIMS
    verdicts = {r["claim"]: r["verdict"] for r in rows}
    # a smoke run is never compared with the paper: every claim with evidence is "not comparable"
    assert set(verdicts.values()) <= {SMOKE, NOT_RUN}
    for r in rows:
        ran = r["ours"] != "" or r["claim"] == "compute_ratio"  # 0 GPU-hours on CPU: the ratio is undefined
        assert r["verdict"] == (SMOKE if ran else NOT_RUN), r
    assert verdicts["backbone"] == verdicts["avg_base"] == verdicts["avg_grlo"] == SMOKE
    _, t1 = _rows(smoke["res"] / "table1.csv")
    t1 = {r["model"]: r for r in t1}
    primary = C.get(smoke["cfg"], "backbones.primary")
    ours = {r["claim"]: r["ours"] for r in rows}
    assert float(ours["avg_base"]) == pytest.approx(float(t1[f"{primary}--base"]["overall"]), abs=0.01)
    assert float(ours["avg_grlo"]) == pytest.approx(float(t1[f"{primary}--grlo"]["overall"]), abs=0.01)
    nonthinking = next(m for m in C.get(smoke["cfg"], "evaluation.released") if m.endswith("--nonthinking"))
    gap = float(t1[f"{primary}--grlo"]["overall"]) - float(t1[nonthinking]["overall"])
    assert float(ours["vs_released"]) == pytest.approx(gap, abs=0.02)
    assert not math.isnan(float(ours["grlo_prompts"]))
