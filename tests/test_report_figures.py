"""Figures: PNGs are written from synthetic metrics and scores; series selection and cost points are checked."""

import json

import pytest

from grlo.cli import main
from grlo.config import REPO_ROOT
from grlo.errors import GrloError
from grlo.report import figures
from grlo.report.paper_refs import PaperRefs

CFG = str(REPO_ROOT / "config" / "config.yaml")
PNG = b"\x89PNG\r\n\x1a\n"


def write_metrics(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_series_picks_first_logged_name_and_skips_non_finite():
    rows = [{"step": 1, "reward_mean": 0.1, "kl": float("nan")}, {"step": 2, "reward_mean": 0.3, "kl": 0.01}]
    name, x, y = figures.series(rows, figures.PANELS["reward"])
    assert name == "reward_mean" and x == [1, 2] and y == [0.1, 0.3]
    name, x, y = figures.series(rows, figures.PANELS["KL"])
    assert name == "kl" and x == [2]
    assert figures.series(rows, figures.PANELS["value loss"]) == (None, [], [])


def test_reward_components_and_new_panels_use_the_trainers_names():
    ppo = [{"step": 1, "reward/score_mean": 0.5, "reward/rm_mean": 0.7, "reward/truncated_mean": -0.2,
            "actor/pg_clipfrac": 0.1, "response_length/clip_ratio": 0.25, "actor/grad_norm": 1.5,
            "critic/grad_norm": 3.0}]
    assert figures.reward_components(ppo) == {"rm": "reward/rm_mean", "truncated": "reward/truncated_mean"}
    assert figures.series(ppo, figures.PANELS["clip fraction"])[0] == "actor/pg_clipfrac"
    assert figures.series(ppo, figures.PANELS["truncation rate"])[0] == "response_length/clip_ratio"
    trl = [{"step": 1, "rewards/general_reasoner/mean": 0.3, "clip_ratio/region_mean": 0.05,
            "completions/clipped_ratio": 0.5, "grad_norm": 0.9}]
    assert figures.reward_components(trl) == {"general_reasoner": "rewards/general_reasoner/mean"}
    assert figures.series(trl, figures.PANELS["clip fraction"])[0] == "clip_ratio/region_mean"
    assert figures.series(trl, figures.PANELS["truncation rate"])[0] == "completions/clipped_ratio"
    assert figures.series(trl, figures.MULTI_PANELS["gradient norm"]["actor"])[0] == "grad_norm"


def test_cli_writes_pngs_and_index(tmp_path):
    ppo = write_metrics(tmp_path / "checkpoints" / "qwen3-4b-base" / "grlo" / "metrics.jsonl", [
        {"step": s, "reward/score_mean": 0.1 * s, "response_length/mean": 30 + s, "critic/vf_loss": 1.0 / s,
         "actor/ppo_kl": 0.001 * s, "actor/entropy": 2.0 - 0.1 * s, "actor/pg_clipfrac": 0.01 * s,
         "response_length/clip_ratio": 0.1, "actor/grad_norm": 1.0, "critic/grad_norm": 2.0,
         "reward/rm_mean": 0.2 * s, "reward/repetition_mean": -0.01} for s in range(1, 5)])
    grpo = write_metrics(tmp_path / "checkpoints" / "qwen3-4b-base" / "rlvr" / "metrics.jsonl", [
        {"step": s, "reward_mean": 0.2, "completion_length_mean": 20, "kl": 0.0, "entropy": 1.0} for s in (1, 2)])
    score = tmp_path / "scores" / "qwen3-4b-base--grlo" / "math500.json"
    score.parent.mkdir(parents=True)
    score.write_text(json.dumps({"model": "qwen3-4b-base--grlo", "benchmark": "math500", "value": 40.0,
                                 "stderr": 5.0, "domain": "math", "label": "MATH-500"}))
    out = tmp_path / "figs"
    assert main(["figures", "--config", CFG, str(REPO_ROOT / "config" / "smoke.yaml"), "--metrics", str(ppo),
                 str(grpo), "--scores", str(score), "--output-dir", str(out)]) == 0
    for name in ("training_qwen3-4b-base_grlo.png", "training_qwen3-4b-base_rlvr.png", "accuracy.png",
                 "cost_vs_accuracy.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    index = json.loads((out / "figures.json").read_text())
    runs = {r["run"]: r["series"] for r in index["training"]}
    assert runs["qwen3-4b-base/grlo"]["value loss"] == "critic/vf_loss"
    assert runs["qwen3-4b-base/rlvr"]["value loss"] is None  # GRPO has no critic: "not logged", never invented
    assert runs["qwen3-4b-base/grlo"]["gradient norm"] == ["actor/grad_norm", "critic/grad_norm"]
    assert runs["qwen3-4b-base/grlo"]["reward components"] == ["reward/rm_mean", "reward/repetition_mean"]
    assert runs["qwen3-4b-base/grlo"]["clip fraction"] == "actor/pg_clipfrac"
    for panel in ("clip fraction", "truncation rate", "gradient norm", "reward components"):
        assert runs["qwen3-4b-base/rlvr"][panel] is None  # absent from these rows: the panel says "not logged"
    assert index["header"][0].startswith("mode: smoke")


def test_cost_points_use_measured_hours_and_reported_checkpoint_cost(tmp_path):
    from grlo import config as _config
    from grlo.accounting import collect_jobs

    d = tmp_path / "train_grlo"
    d.mkdir()
    (d / "qwen3-4b-base.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\t"
                                         "cpu_time\n" + "7200\t2:00:00\t1\t1\t1\t1\t1\t1\t1\t100\n")
    (d / "qwen3-4b-base.device.json").write_text(json.dumps({"gpu_count": 4, "gpu_model": "H100"}))
    cfg = _config.load([CFG])
    cfg["evaluation"]["benchmarks"] = ["math500"]
    cfg["rlvr"]["mode"] = "checkpoint"
    scores = {(f"qwen3-4b-base--{v}", "math500"): {"model": f"qwen3-4b-base--{v}", "benchmark": "math500",
                                                    "value": val, "domain": "math"}
              for v, val in (("base", 20.0), ("grlo", 60.0), ("rlvr", 65.0))}
    pts = {p["label"]: p for p in figures.cost_points(cfg, scores, collect_jobs(tmp_path), PaperRefs())}
    assert pts["Qwen3-4B-Base + GRLO"]["gpu_hours"] == pytest.approx(8.0)
    assert pts["Qwen3-4B-Base + RLVR"]["gpu_hours"] == 1536 and pts["Qwen3-4B-Base + RLVR"]["kind"].startswith("rep")
    assert pts["paper: GRLO"]["gpu_hours"] == 22.7 and pts["paper: GRLO"]["overall"] == 63.1
    assert "Qwen3-4B-Base + GRLO -> RLVR" not in pts  # no score, no cost: no point
    assert figures.cost_figure(list(pts.values()), tmp_path / "c.png") == "gpu_hours"


def test_cpu_only_run_is_drawn_against_cpu_hours(tmp_path):
    pts = [{"label": "base", "gpu_hours": 0.0, "cpu_hours": 0.0, "overall": 10.0, "kind": "measured"},
           {"label": "grlo", "gpu_hours": 0.0, "cpu_hours": 0.02, "overall": 12.0, "kind": "measured"},
           {"label": "paper: GRLO", "gpu_hours": 22.7, "cpu_hours": None, "overall": 63.1, "kind": "paper"}]
    assert figures.cost_figure(pts, tmp_path / "c.png") == "cpu_hours"
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG


def test_metrics_without_step_is_an_error(tmp_path):
    p = write_metrics(tmp_path / "c" / "b" / "grlo" / "metrics.jsonl", [{"reward": 1.0}])
    with pytest.raises(GrloError, match="without 'step'"):
        figures.read_metrics(p)
