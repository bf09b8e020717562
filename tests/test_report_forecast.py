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
# efficiencies 0.5 (train), 0.4 (forward), 0.1 (decode), for packed and padded work alike.
def _e(v, lo=None, hi=None):
    return {"value": v, "low": lo or v, "high": hi or v, "kind": "assumed", "source": "t"}


TABLE = {"gpus": {"X": {"peak_bf16_tflops": 1000.0, "source": "test", "kind": "assumed"}},
         "efficiency": {"default": {"train_packed": _e(0.5), "train_padded": _e(0.5), "forward_packed": _e(0.4),
                                    "forward_padded": _e(0.4), "decode": _e(0.1)}}}


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
    g.update({"train_batch_size": 64, "max_response_length": 800, "total_training_steps": None, "engine": "native"})
    g["actor"]["ppo_mini_batch_size"] = g["critic"]["ppo_mini_batch_size"] = 64
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
    assert float(total["gpu_hours"]) == pytest.approx(sum(float(r["gpu_hours"]) for r in rows
                                                          if r["stage"] != "total" and r.get("in_total") != "false"),
                                                      rel=1e-3)


def test_paper_grlo_on_5000_prompts_is_60_steps_with_validation_on_verl_only(tmp_path):
    cfg = _config.load([CFG])
    cfg["backbones"]["extra"] = []
    own = tmp_path / "prompts5k.jsonl"  # the paper's 5K set as the user's own prompt file
    own.write_text("".join('{"prompt": "p%d"}\n' % i for i in range(5000)))
    cfg["prompts"].update({"path": str(own), "url": None, "sha256": None})
    assert forecast.validation_steps(60, 7) == [0, 7, 14, 21, 28, 35, 42, 49, 56, 60]
    assert forecast.validation_steps(56, 7)[-1] == 56 and forecast.validation_steps(3, 0) == [0]
    verl_rows, verl_notes = forecast.plan(cfg, TABLE_GPU(cfg), engine="verl")
    native_rows, _ = forecast.plan(cfg, TABLE_GPU(cfg), engine="native")
    v = [r for r in verl_rows if r["stage"] == "grlo" and r["model"] == "qwen3-4b-base"][0]
    n = [r for r in native_rows if r["stage"] == "grlo" and r["model"] == "qwen3-4b-base"][0]
    assert v["detail"].startswith("60 steps x 1024 prompts") and n["detail"].startswith("60 steps x 1024 prompts")
    assert "10 validation passes x 500 math500 prompts" in v["detail"] and "validation" not in n["detail"]
    N, t = 4.02e9, 150 + 0.5 * 3072
    assert (v["decode_pflop"] - n["decode_pflop"]) * 1e15 == pytest.approx(2 * N * 10 * 500 * t, rel=1e-9)
    assert v["engine"] == "verl" and n["engine"] == "native"
    assert any("floor(5000 prompts / batch 1024)" in a for a in verl_notes)
    # the prepared set's own count: the public 1,000 prompts adapt the batch (grlo.adapt_batch_size) -> 15 steps
    one_k, _ = forecast.plan(cfg, TABLE_GPU(cfg), {"count": 1000, "token_length": {"mean": 150}}, engine="native")
    assert [r for r in one_k if r["stage"] == "grlo"][0]["detail"].startswith("15 steps x 992 prompts")


def test_paper_config_plans_the_public_prompt_file_as_train_grlo_dry_run_does(capsys):
    """The run downloads the public 1,000-prompt file (prompts.sha256): forecast, status and doctor plan its 15 steps
    of 512 (batch adapted), exactly what `grlo train-grlo --dry-run` prints, not the paper's 60 of 1,024."""
    cfg = _config.load([CFG])
    assert main(["train-grlo", "--config", CFG, "--backbone", "qwen3-4b-base", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    steps = int(printed.split("steps: ", 1)[1].split()[0])
    batch = int(printed.split("train_batch_size 1024 -> ", 1)[1].split(",")[0])
    gp = forecast.grlo_plan(cfg)
    assert (gp["prompts"], gp["batch"], gp["steps"]) == (1000, batch, steps) == (1000, 512, 15)
    rows, notes = forecast.plan(cfg, TABLE_GPU(cfg))
    assert [r for r in rows if r["stage"] == "grlo"][0]["detail"].startswith("15 steps x 512 prompts")
    assert any("GRLO steps = 15 of 512 prompts" in a and "batch adapted from 1024" in a for a in notes)
    from grlo.status import forecast_rows

    assert [r["steps"] for r in forecast_rows(cfg) if r["stage"] == "grlo"][0] == 15


def TABLE_GPU(cfg):
    return {**TABLE, "gpus": {cfg["report"]["forecast"]["gpu"]: TABLE["gpus"]["X"]}}


def test_low_high_range_uses_the_other_end_of_each_efficiency():
    table = {**TABLE, "efficiency": {"default": {"train_padded": _e(0.5, 0.25, 1.0), "forward_padded": _e(0.4, 0.2, 0.8),
                                                 "decode": _e(0.1, 0.05, 0.2), "train_packed": _e(0.5),
                                                 "forward_packed": _e(0.4)}}}
    rows, _ = forecast.plan(base_cfg(), table)
    g = [r for r in rows if r["stage"] == "grlo"][0]
    assert g["gpu_hours_low"] == pytest.approx(g["gpu_hours"] / 2) and g["gpu_hours_high"] == pytest.approx(2 * g["gpu_hours"])


def test_engines_use_their_own_efficiencies():
    table = forecast.load_throughput()
    _, verl = forecast.effective_flops(table, "H200", "verl")
    _, native = forecast.effective_flops(table, "H200", "native")
    assert verl["train"]["work"] == "train_packed" and native["train"]["work"] == "train_padded"
    assert verl["train"]["value"] > native["train"]["value"] and verl["forward"]["value"] > native["forward"]["value"]
    for effs in (verl, native):
        for e in effs.values():
            assert e["low"] <= e["value"] <= e["high"]


def test_efficiencies_are_rederived_from_the_measurements():
    """Every measured efficiency in throughput.yaml follows from the measurement files (8N x real tokens/s / peak;
    the bench's model TFLOP/s, which counts attention FLOPs, is not used)."""
    import json

    table = forecast.load_throughput()
    peak = table["gpus"]["H200"]["peak_bf16_tflops"] * 1e12
    bench = json.loads((REPO_ROOT / "benchmarks/results/ppo_update_h200.json").read_text())
    runs = {r["model"]: r for r in bench["runs"] if r["arch"] == "4b"}
    c, a = runs["critic"], runs["actor"]

    def eff8(run, key):
        return 8 * run["params"] * run[key] / peak

    both = (8 * c["params"] + 8 * a["params"]) / (1 / c["tokens_per_s"] + 1 / a["tokens_per_s"]) / peak
    both_padded = (8 * c["params"] + 8 * a["params"]) / (1 / c["padded_tokens_per_s"] + 1 / a["padded_tokens_per_s"]) / peak
    frac = [r["real_tokens"] / r["padded_tokens"] for r in (c, a)]
    meas = {s: json.loads((REPO_ROOT / f"grlo/report/measurements/h200_qwen3-4b_s{s}_b4.json").read_text())
            for s in (2048, 4096)}
    h100 = json.loads((REPO_ROOT / "grlo/report/measurements/h100_qwen3-4b_s2048_b4.json").read_text())
    fwd = [meas[s]["forward"]["tflops"] * 1e12 / peak for s in (2048, 4096)]
    trn = [meas[s]["train"]["tflops"] * 1e12 / peak for s in (2048, 4096)]
    overhead = both_padded / trn[1]
    expect_h200 = {
        "train_padded": (both, min(eff8(c, "tokens_per_s"), eff8(a, "tokens_per_s")), both_padded),
        "forward_padded": (sum(fwd) / 2 * sum(frac) / 2, fwd[1] * min(frac), fwd[0]),
        "forward_packed": (sum(fwd) / 2, sum(fwd) / 2 * sum(frac) / 2, fwd[0]),
        "train_packed": (sum(trn) / 2 * overhead, both, trn[0]),
    }
    ratio = {"forward": h100["forward"]["tflops"] * 1e12 / peak / fwd[0],
             "train": h100["train"]["tflops"] * 1e12 / peak / trn[0]}
    for work, (v, lo, hi) in expect_h200.items():
        e = table["efficiency"]["H200"][work]
        assert (e["value"], e["low"], e["high"]) == pytest.approx((v, lo, hi), abs=1.5e-3), work
        r = ratio[work.split("_")[0]]
        h = table["efficiency"]["H100-SXM"][work]
        assert (h["value"], h["low"], h["high"]) == pytest.approx((v * r, lo * r, hi * r), abs=2.5e-3), work
    assert both == pytest.approx(0.179, abs=1e-3)  # not 8/6 x 140.4 / 989.4 = 0.189 (attention FLOPs counted)


def test_cli_engine_override_and_range_columns(tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(["forecast", "--config", CFG, "--engine", "native", "--gpu", "H200", "--output", str(out)]) == 0
    assert "engine native" in capsys.readouterr().out
    _, rows = read_results_csv(out)
    g = [r for r in rows if r["stage"] == "grlo"][0]
    assert g["engine"] == "native" and float(g["gpu_hours_low"]) <= float(g["gpu_hours"]) <= float(g["gpu_hours_high"])
