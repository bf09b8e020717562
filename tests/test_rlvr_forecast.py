"""`grlo forecast` prices the RLVR stages on both engines (verl packed, TRL padded) with the same FLOPs; the total
follows `rlvr.engine`; the RLVR step budget (optimizer steps) is converted to generation batches."""

import copy

import pytest

from grlo import config as C
from grlo.report import forecast
from grlo.report.html import forecast_vs_measured

PAPER = C.load(["config/config.yaml"])
TABLE = forecast.load_throughput()


def rlvr_rows(cfg):
    rows, assumptions = forecast.plan(cfg, TABLE)
    return [r for r in rows if r["stage"] == "grlo-rlvr"], rows, assumptions


@pytest.mark.parametrize("engine", ["verl", "trl"])
def test_both_engines_priced_and_the_configured_one_counts(engine):
    cfg = copy.deepcopy(PAPER)
    cfg["rlvr"]["engine"] = engine
    gr, rows, assumptions = rlvr_rows(cfg)
    by = {r["engine"]: r for r in gr}
    assert set(by) == {"verl", "trl"} and by[engine]["in_total"] and not by[{"verl": "trl", "trl": "verl"}[engine]][
        "in_total"]
    for k in forecast.KINDS:  # one GRPO recipe: the same work, priced at each engine's efficiency
        assert by["verl"][f"{k}_pflop"] == by["trl"][f"{k}_pflop"]
    train = by["verl"]["train_pflop"] * 1e15
    peak = TABLE["gpus"]["H100-SXM"]["peak_bf16_tflops"] * 1e12
    eff = {**TABLE["efficiency"]["default"], **TABLE["efficiency"].get("H100-SXM", {})}
    # the train part alone, at packed vs padded efficiency (forecast table: 0.29 vs 0.167 on H100)
    assert eff["train_packed"]["value"] == 0.29 and eff["train_padded"]["value"] == 0.167
    dec, fwd = by["verl"]["decode_pflop"] * 1e15, by["verl"]["forward_pflop"] * 1e15
    for eng, tw, fw in (("verl", "train_packed", "forward_packed"), ("trl", "train_padded", "forward_padded")):
        want = (dec / (peak * eff["decode"]["value"]) + fwd / (peak * eff[fw]["value"])
                + train / (peak * eff[tw]["value"])) / 3600
        assert by[eng]["gpu_hours"] == pytest.approx(want, rel=1e-9)
    assert by["verl"]["gpu_hours"] < by["trl"]["gpu_hours"]
    assert any(f"RLVR engine {engine} (rlvr.engine) counts" in a for a in assumptions)


def test_step_budget_is_optimizer_steps_four_per_generation_batch():
    gr, _, _ = rlvr_rows(PAPER)
    # grlo-rlvr: 80 optimizer steps of 256 prompts = 20 generation batches of 1024 (= max_prompts 20480)
    assert gr[0]["detail"].startswith("20 steps x 1024 prompts x 8 samples")
    tokens = 20 * 1024 * 8 * (150 + 0.5 * 8192)
    assert gr[0]["train_pflop"] * 1e15 == pytest.approx(8 * 4.02e9 * tokens, rel=1e-2)


def test_cli_total_follows_rlvr_engine_and_the_report_skips_the_other_engine(tmp_path, capsys):
    from grlo.cli import main
    from grlo.report.common import read_results_csv

    totals = {}
    for engine in ("verl", "trl"):
        over = tmp_path / f"{engine}.yaml"
        over.write_text(f"rlvr:\n  engine: {engine}\n")
        out = tmp_path / f"{engine}.csv"
        assert main(["forecast", "--config", "config/config.yaml", str(over), "--output", str(out)]) == 0
        text = capsys.readouterr().out
        assert f"qwen3-4b-base on {'trl' if engine == 'verl' else 'verl'} (not in total)" in text
        _, rows = read_results_csv(out)
        totals[engine] = float([r for r in rows if r["stage"] == "total"][0]["gpu_hours"])
        counted = [r for r in rows if r["stage"] == "grlo-rlvr" and r["in_total"] == "true"]
        assert [r["engine"] for r in counted] == [engine]
        cost = forecast_vs_measured(rows, [])
        assert float([r for r in cost if r["stage"] == "total"][0]["forecast_gpu_hours"]) == pytest.approx(
            totals[engine], rel=1e-3)  # the cost page's total leaves the other engine's row out
        assert len([r for r in cost if r["stage"] == "grlo-rlvr"]) == 1
    assert totals["verl"] < totals["trl"]
