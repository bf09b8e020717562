"""Claim verdicts: tolerance edges (inclusive), relative tolerances, not run, smoke, the two qualitative rules."""

import json

import pytest

from grlo import config as _config
from grlo.cli import main
from grlo.config import REPO_ROOT
from grlo.report import claims
from grlo.report.claims import NOT_REPRODUCED, NOT_RUN, REPRODUCED, SMOKE, verdict, within
from grlo.report.common import read_results_csv
from grlo.report.paper_refs import PaperRefs

CFG = str(REPO_ROOT / "config" / "config.yaml")


@pytest.mark.parametrize("ours,expected", [
    (27.1, REPRODUCED), (21.1, REPRODUCED),  # exactly 3.0 points away (float noise absorbed)
    (27.1001, NOT_REPRODUCED), (21.0999, NOT_REPRODUCED), (24.1, REPRODUCED)])
def test_absolute_tolerance_edges(ours, expected):
    assert verdict(ours, 24.1, 3.0) == expected


@pytest.mark.parametrize("ours,expected", [
    (34.05, REPRODUCED), (11.35, REPRODUCED), (34.06, NOT_REPRODUCED), (11.34, NOT_REPRODUCED)])
def test_relative_tolerance_edges(ours, expected):
    assert verdict(ours, 22.7, 0.5, relative=True) == expected  # 22.7 +- 11.35


def test_zero_tolerance_is_exact_and_missing_or_smoke():
    assert verdict(5000, 5000, 0.0, relative=True) == REPRODUCED
    assert verdict(1000, 5000, 0.0, relative=True) == NOT_REPRODUCED
    assert verdict(None, 63.1, 3.0) == NOT_RUN
    assert verdict(63.1, 63.1, 3.0, mode="smoke") == SMOKE
    assert verdict(None, 63.1, 3.0, mode="smoke") == NOT_RUN
    assert verdict(None, 68, 0.5, mode="smoke", ran=True) == SMOKE  # e.g. a ratio over 0 GPU-hours of a CPU run
    assert verdict(None, 68, 0.5, mode="paper", ran=True) == NOT_RUN
    assert verdict(1.0, 0.0, 0.0, passed=False) == NOT_REPRODUCED
    assert within(63.1 + 3.0, 63.1, 3.0) and not within(63.1 + 3.0 + 1e-6, 63.1, 3.0)


def score(model, bench, value, domain="math"):
    return (model, bench), {"model": model, "benchmark": bench, "value": value, "domain": domain}


def make(cfg_over=None, values=None):
    cfg = _config.load([CFG])
    cfg["evaluation"]["benchmarks"] = ["math500", "aime24", "gpqa_diamond"]
    cfg["evaluation"]["released"] = ["qwen3-4b--nonthinking"]
    cfg = _config.deep_merge(cfg, cfg_over or {})
    doms = {"math500": "math", "aime24": "math", "gpqa_diamond": "science"}
    scores = dict(score(m, b, v, doms[b]) for (m, b), v in (values or {}).items())
    return cfg, scores


def by_claim(rows):
    return {r["claim"]: r for r in rows}


def test_build_paper_mode_all_claims(tmp_path):
    from grlo.accounting import collect_jobs

    values = {
        # base overall = ((10 + 0)/2 + 29.1)/2 = 17.05 -> 7.05 from 24.1: not reproduced
        ("qwen3-4b-base--base", "math500"): 10.0, ("qwen3-4b-base--base", "aime24"): 0.0,
        ("qwen3-4b-base--base", "gpqa_diamond"): 29.1,
        # grlo overall = ((80 + 20)/2 + 70.2)/2 = 60.1 -> exactly 3.0 below 63.1: reproduced (edge)
        ("qwen3-4b-base--grlo", "math500"): 80.0, ("qwen3-4b-base--grlo", "aime24"): 20.0,
        ("qwen3-4b-base--grlo", "gpqa_diamond"): 70.2,
        # released overall = ((84 + 30)/2 + 72.3)/2 = 64.65 -> gap -4.55 >= -5: competitive
        ("qwen3-4b--nonthinking", "math500"): 84.0, ("qwen3-4b--nonthinking", "aime24"): 30.0,
        ("qwen3-4b--nonthinking", "gpqa_diamond"): 72.3,
        # GRLO->RLVR: +6 on aime24 (competition math), +1 on math500, -1 on gpqa
        ("qwen3-4b-base--grlo-rlvr", "math500"): 81.0, ("qwen3-4b-base--grlo-rlvr", "aime24"): 26.0,
        ("qwen3-4b-base--grlo-rlvr", "gpqa_diamond"): 69.2,
    }
    cfg, scores = make(values=values)
    cfg["rlvr"]["mode"] = "checkpoint"
    d = tmp_path / "train_grlo"
    d.mkdir()
    (d / "qwen3-4b-base.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\t"
                                         "cpu_time\n" + "21600\t6:00:00\t1\t1\t1\t1\t1\t1\t1\t100\n")
    (d / "qwen3-4b-base.device.json").write_text(json.dumps({"gpu_count": 4, "gpu_model": "H100"}))  # 24 GPU-h
    rows = by_claim(claims.build(cfg, scores, PaperRefs(), collect_jobs(tmp_path), 1000, None))
    assert rows["backbone"]["verdict"] == REPRODUCED
    assert rows["avg_base"]["ours"] == pytest.approx(17.05) and rows["avg_base"]["verdict"] == NOT_REPRODUCED
    assert rows["avg_grlo"]["ours"] == pytest.approx(60.1) and rows["avg_grlo"]["verdict"] == REPRODUCED
    assert rows["grlo_prompts"]["verdict"] == NOT_REPRODUCED  # the public release has 1K of the 5K prompts
    assert rows["grlo_gpu_hours"]["ours"] == pytest.approx(24.0) and rows["grlo_gpu_hours"]["verdict"] == REPRODUCED
    assert rows["data_ratio"]["ours"] == pytest.approx(230.0) and rows["data_ratio"]["verdict"] == NOT_REPRODUCED
    assert rows["compute_ratio"]["ours"] == pytest.approx(64.0) and rows["compute_ratio"]["verdict"] == REPRODUCED
    assert rows["vs_released"]["ours"] == pytest.approx(-4.55) and rows["vs_released"]["verdict"] == REPRODUCED
    assert rows["grlo_rlvr_gain"]["ours"] == pytest.approx(6.0) and rows["grlo_rlvr_gain"]["verdict"] == REPRODUCED


def test_qualitative_rules_fail_when_they_should():
    values = {("qwen3-4b-base--grlo", "math500"): 50.0, ("qwen3-4b-base--grlo", "aime24"): 10.0,
              ("qwen3-4b-base--grlo", "gpqa_diamond"): 30.0,
              ("qwen3-4b--nonthinking", "math500"): 80.0, ("qwen3-4b--nonthinking", "aime24"): 20.0,
              ("qwen3-4b--nonthinking", "gpqa_diamond"): 40.0,
              # larger gain off competition math (+10 on math500) than on aime24 (+2): not "mainly" competition math
              ("qwen3-4b-base--grlo-rlvr", "math500"): 60.0, ("qwen3-4b-base--grlo-rlvr", "aime24"): 12.0}
    cfg, scores = make(values=values)
    rows = by_claim(claims.build(cfg, scores, PaperRefs(), [], None, None))
    # grlo overall ((50 + 10)/2 + 30)/2 = 30; released ((80 + 20)/2 + 40)/2 = 45
    assert rows["vs_released"]["ours"] == pytest.approx(-15.0) and rows["vs_released"]["verdict"] == NOT_REPRODUCED
    assert rows["grlo_rlvr_gain"]["verdict"] == NOT_REPRODUCED
    assert rows["grlo_prompts"]["verdict"] == NOT_RUN and rows["grlo_gpu_hours"]["verdict"] == NOT_RUN
    assert rows["compute_ratio"]["verdict"] == NOT_RUN and rows["avg_base"]["verdict"] == NOT_RUN
    # the margin is configurable: at 15 points the same gap is competitive (edge inclusive)
    cfg["report"]["tolerance"]["competitive_points"] = 15.0
    rows = by_claim(claims.build(cfg, scores, PaperRefs(), [], None, None))
    assert rows["vs_released"]["verdict"] == REPRODUCED


def test_cli_smoke_mode_says_not_comparable(tmp_path):
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"model": "qwen3-4b-base--grlo", "benchmark": "math500", "value": 63.1,
                             "domain": "math"}))
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"count": 40}))
    out = tmp_path / "claims.csv"
    rc = main(["claims", "--config", CFG, str(REPO_ROOT / "config" / "smoke.yaml"), "--scores", str(s),
               "--prompt-stats", str(stats), "--output", str(out)])
    assert rc == 0
    header, rows = read_results_csv(out)
    assert header[0].startswith("mode: smoke")
    v = {r["claim"]: r["verdict"] for r in rows}
    assert v["grlo_prompts"] == SMOKE and v["backbone"] == SMOKE
    assert v["grlo_gpu_hours"] == NOT_RUN  # no benchmarks dir given
    assert set(v.values()) <= {SMOKE, NOT_RUN}
    # CPU runs of both training stages: 0 GPU-hours, the compute ratio is undefined but the run happened
    bench = tmp_path / "benchmarks"
    for rule in ("train_grlo", "train_rlvr"):
        (bench / rule).mkdir(parents=True)
        (bench / rule / "qwen3-4b-base.tsv").write_text(
            "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
            "60\t0:01:00\t1\t1\t1\t1\t1\t1\t1\t50\n")
        (bench / rule / "qwen3-4b-base.device.json").write_text(json.dumps({"gpu_count": 0, "gpu_model": None}))
    rc = main(["claims", "--config", CFG, str(REPO_ROOT / "config" / "smoke.yaml"), "--scores", str(s),
               "--prompt-stats", str(stats), "--benchmarks-dir", str(bench), "--output", str(out)])
    v = {r["claim"]: r for r in read_results_csv(out)[1]}
    assert rc == 0 and v["compute_ratio"]["verdict"] == SMOKE and v["compute_ratio"]["ours"] == ""
    assert v["grlo_gpu_hours"]["verdict"] == SMOKE and float(v["grlo_gpu_hours"]["ours"]) == 0.0
    assert "smoke run — not comparable" in out.with_suffix(".md").read_text()


def test_smoke_backbone_line_names_the_stand_in_and_deviations_are_reported(tmp_path):
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"model": "qwen3-4b-base--grlo", "benchmark": "math500", "value": 1.0, "domain": "math"}))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"batch_sizes": {"adapted": {"train_batch_size": [512, 40]}},
                                    "deviations": {"trainer.save_freq": "smoke: no intermediate checkpoint"}}))
    out = tmp_path / "claims.csv"
    assert main(["claims", "--config", CFG, str(REPO_ROOT / "config" / "smoke.yaml"), "--scores", str(s),
                 "--grlo-manifest", str(manifest), "--output", str(out)]) == 0
    header, rows = read_results_csv(out)
    v = {r["claim"]: r for r in rows}
    assert v["backbone"]["ours"] == "SmolLM2-135M-Instruct (smoke stand-in for Qwen3-4B-Base)"
    assert "train_batch_size 512 -> 40" in v["grlo_gpu_hours"]["rule"]
    assert any("deviation of the GRLO run: verl trainer.save_freq" in h for h in header)
    # paper mode: the backbone is the model itself
    assert main(["claims", "--config", CFG, "--scores", str(s), "--output", str(out)]) == 0
    assert {r["claim"]: r for r in read_results_csv(out)[1]}["backbone"]["ours"] == "Qwen3-4B-Base"
