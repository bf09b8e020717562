"""Forecast arithmetic against a hand calculation; throughput table provenance; CLI output."""

import pytest
import yaml

from grlo import config as _config
from grlo.cli import main
from grlo.config import REPO_ROOT
from grlo.errors import GrloError
from grlo.report import forecast
from grlo.report.common import read_results_csv

CFG = str(REPO_ROOT / "config" / "config.yaml")

# A throughput table with round numbers so the hand calculation is easy: 1000 TFLOP/s peak,
# efficiencies 0.5 (train), 0.4 (forward), 0.1 (decode).
TABLE = {"gpus": {"X": {"peak_bf16_tflops": 1000.0, "source": "test", "kind": "assumed"}},
         "efficiency": {"default": {"train": {"value": 0.5, "kind": "assumed", "source": "t"},
                                    "forward": {"value": 0.4, "kind": "assumed", "source": "t"},
                                    "decode": {"value": 0.1, "kind": "assumed", "source": "t"}}}}


def base_cfg():
    cfg = _config.load([CFG])
    cfg["backbones"]["extra"] = []
    cfg["evaluation"]["variants"] = ["base", "grlo"]
    cfg["evaluation"]["released"] = []
    cfg["evaluation"]["benchmarks"] = ["math500"]
    cfg["evaluation"]["overrides"] = {"math500": {"k": 4, "max_tokens": 1000, "limit": 100}}
    cfg["rlvr"]["mode"] = "checkpoint"
    cfg["report"]["forecast"].update({"gpu": "X", "mean_prompt_tokens": 100, "response_fraction": 0.5,
                                      "gradient_checkpointing": True})
    cfg["report"]["forecast"]["stages"]["grlo"] = {"steps": 10, "batch_prompts": 64, "samples": 1,
                                                  "max_response_tokens": 800}
    # the grlo: training section, where present, is what the run will use: it must agree
    g = cfg.setdefault("grlo", {})
    g.update({"train_batch_size": 64, "max_response_length": 800, "total_training_steps": None})
    g.setdefault("rollout", {})["n"] = 1
    g.setdefault("actor", {})["gradient_checkpointing"] = True
    return cfg


def test_grlo_and_eval_match_hand_calculation():
    rows, assumptions = forecast.plan(base_cfg(), TABLE)
    by = {(r["stage"], r["model"]): r for r in rows}
    N = 4.02e9  # qwen3-4b-base params_b
    RM = 8.03e9  # skywork-reward-v2-llama-3.1-8b
    tokens = 10 * 64 * (100 + 0.5 * 800)  # steps x prompts x (prompt + mean response) = 320,000
    decode = 2 * N * tokens / (1000e12 * 0.1)
    fwd = 2 * (N + N + RM) * tokens / (1000e12 * 0.4)  # old log-probs, critic values, reward model
    train = 8 * (N + N) * tokens / (1000e12 * 0.5)  # actor + critic, forward+backward with recompute
    g = by[("grlo", "qwen3-4b-base")]
    assert g["gpu_hours"] == pytest.approx((decode + fwd + train) / 3600, rel=1e-9)
    assert g["train_pflop"] == pytest.approx(8 * 2 * N * tokens / 1e15)
    # eval: 100 problems (limit) x 4 samples x (100 + 500) tokens, decode only, per model
    e = by[("eval", "qwen3-4b-base--grlo")]
    assert e["gpu_hours"] == pytest.approx(2 * N * 100 * 4 * 600 / (1000e12 * 0.1) / 3600, rel=1e-9)
    # checkpoint mode and no rlvr variant: no RLVR training forecast at all
    assert not any(r["stage"] in ("rlvr", "grlo-rlvr") for r in rows)
    assert any("peak 1000" in a for a in assumptions) and any("efficiency train = 0.5" in a for a in assumptions)


def test_no_gradient_checkpointing_is_6n_and_rlvr_train_mode():
    cfg = base_cfg()
    cfg["report"]["forecast"]["gradient_checkpointing"] = False
    cfg["grlo"]["actor"]["gradient_checkpointing"] = False
    cfg["evaluation"]["variants"] = ["rlvr"]
    cfg["rlvr"]["mode"] = "train"
    cfg["rlvr"]["train"].update({"batch_prompts": 8, "num_generations": 4, "max_completion_length": 200,
                                 "beta": 0.0, "max_steps": 5})
    cfg["rlvr"]["stages"]["rlvr"] = {}
    cfg["rlvr"]["reward"]["verifier"] = "math"
    rows, _ = forecast.plan(cfg, TABLE)
    by = {r["stage"]: r for r in rows}
    assert "grlo" not in by  # rlvr alone does not need a GRLO run
    N = 4.02e9
    tokens = 5 * 8 * 4 * (100 + 100)
    r = by["rlvr"]
    assert r["forward_pflop"] == 0.0  # beta 0: no reference model; rule-based verifier: no GPU model
    assert r["gpu_hours"] == pytest.approx((2 * N * tokens / 1e14 + 6 * N * tokens / 5e14) / 3600, rel=1e-9)


def test_measured_prompt_length_replaces_the_assumption():
    rows, assumptions = forecast.plan(base_cfg(), TABLE, {"count": 40, "token_length": {"mean": 300.0}})
    g = [r for r in rows if r["stage"] == "grlo"][0]
    assert "x 700 tokens" in g["detail"]  # 300 measured + 0.5 x 800
    assert any("300 (measured" in a for a in assumptions)


def test_training_section_wins_over_forecast_defaults():
    cfg = base_cfg()
    cfg["grlo"].update({"train_batch_size": 128, "total_training_steps": 3})
    rows, _ = forecast.plan(cfg, TABLE)
    assert [r for r in rows if r["stage"] == "grlo"][0]["detail"].startswith("3 steps x 128 prompts")


def test_rlvr_steps_from_epochs_over_data():
    cfg = base_cfg()
    cfg["evaluation"]["variants"] = ["rlvr"]
    cfg["rlvr"]["mode"] = "train"
    cfg["rlvr"]["train"].update({"batch_prompts": 1000, "max_steps": None, "epochs": 2})
    cfg["rlvr"]["stages"]["rlvr"] = {}
    cfg["rlvr"]["data"]["subset"] = 4500
    rows, _ = forecast.plan(cfg, TABLE)
    assert [r for r in rows if r["stage"] == "rlvr"][0]["detail"].startswith("9 steps x 1000 prompts")  # ceil(2*4.5)


def test_throughput_table_entries_have_sources_and_unknown_gpu_is_an_error(tmp_path):
    table = forecast.load_throughput()
    for name, g in table["gpus"].items():
        assert g["source"] and g["kind"] in ("vendor", "measured", "assumed") and g["peak_bf16_tflops"] > 0
    for gpu, effs in table["efficiency"].items():
        for kind, e in effs.items():
            assert e["source"] and e["kind"] in ("measured", "assumed") and 0 < e["value"] <= 1
    for m in table.get("measured") or []:
        assert m["source"] and m["gpu"] and m["date"]
    cfg = base_cfg()
    cfg["report"]["forecast"]["gpu"] = "TPU"
    with pytest.raises(GrloError, match="unknown GPU type 'TPU'"):
        forecast.plan(cfg, table)
    bad = tmp_path / "t.yaml"
    bad.write_text(yaml.safe_dump({"gpus": {"Y": {"peak_bf16_tflops": 1.0}}}))
    with pytest.raises(GrloError, match="missing 'source'"):
        forecast.load_throughput(bad)


def test_cli_paper_config_prints_stages_total_and_assumptions(tmp_path, capsys):
    out = tmp_path / "forecast.csv"
    assert main(["forecast", "--config", CFG, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "grlo" in text and "total" in text and "assumptions:" in text and "efficiency decode" in text
    header, rows = read_results_csv(out)
    assert header[0].startswith("mode: paper") and any(h.startswith("note: forecast, not a measurement") for h in header)
    total = [r for r in rows if r["stage"] == "total"][0]
    assert float(total["gpu_hours"]) == pytest.approx(sum(float(r["gpu_hours"]) for r in rows if r["stage"] != "total"),
                                                      rel=1e-3)
