"""`grlo status` on a synthetic run directory: jobs from Snakemake's metadata, the training step from metrics.jsonl,
and an ETA from the forecast corrected by the measured seconds per step."""

import base64
import json
from pathlib import Path

import pytest

from grlo import config as C
from grlo import status as S
from grlo.cli import main
from grlo.config import REPO_ROOT

PAPER = [str(REPO_ROOT / "config" / "config.yaml")]


def meta(run: Path, output: str, rule: str, job: int, start=100.0, end=160.0, incomplete=False, create=True):
    d = run / ".snakemake" / "metadata"
    d.mkdir(parents=True, exist_ok=True)
    name = base64.urlsafe_b64encode(output.encode()).decode()
    (d / name).write_text(json.dumps({"rule": rule, "job_hash": job, "starttime": start, "endtime": end,
                                      "incomplete": incomplete}))
    if create:
        (run / output).parent.mkdir(parents=True, exist_ok=True)
        (run / output).write_text("x")


def metrics(run: Path, bb: str, stage: str, rows: list[dict], name="metrics.jsonl"):
    d = run / "checkpoints" / bb / stage
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_jobs_from_snakemake_metadata(tmp_path):
    meta(tmp_path, "data/benchmarks/math500.jsonl", "download_benchmark", 1)
    meta(tmp_path, "generations/m--base/math500.jsonl", "generate", 2, 0, 3600)
    meta(tmp_path, "generations/m--base/math500.meta.json", "generate", 2, 0, 3600)  # same job, second output
    meta(tmp_path, "generations/m--grlo/math500.jsonl", "generate", 3, create=False)  # deleted output: not done
    meta(tmp_path, "checkpoints/b/grlo/metrics.jsonl", "train_grlo", 4, incomplete=True, create=False)
    jobs = S.snakemake_jobs(tmp_path)
    assert jobs.done == {"download_benchmark": 1, "generate": 1}
    assert jobs.running == {"train_grlo": 1}
    assert jobs.seconds["generate"] == 3600


def test_parse_job_stats():
    text = """Building DAG of jobs...
Job stats:
job                   count
------------------  -------
generate                  6
score                    42
total                    48

Reasons:
"""
    assert S.parse_job_stats(text) == {"generate": 6, "score": 42}
    assert S.parse_job_stats("Nothing to be done.") == {}


def test_seconds_per_step_ppo_and_trl():
    assert S.seconds_per_step([{"step": 1, "time/step": 10.0}, {"step": 2, "time/step": 14.0}]) == 12.0
    trl = [{"step": 1, "time_s": 30.0}, {"step": 2, "time_s": 50.0}, {"step": 4, "time_s": 90.0}]
    assert S.seconds_per_step(trl) == 20.0
    assert S.seconds_per_step([{"step": 3, "time_s": 60.0}]) == 20.0
    assert S.seconds_per_step([{"step": 1}]) is None


def test_eta_corrects_the_forecast_by_measured_step_times(tmp_path):
    cfg = C.load(PAPER)
    cfg = C.deep_merge(cfg, {"backbones": {"extra": []}})
    # forecast: grlo 73 steps = 73 GPU-h on 4 GPUs -> 4 * 3600 s/step forecast; grlo-rlvr 100 GPU-h not started
    fc = [{"stage": "grlo", "model": "qwen3-4b-base", "gpu_hours": 73.0, "steps": 73},
          {"stage": "grlo-rlvr", "model": "qwen3-4b-base", "gpu_hours": 100.0, "steps": 80},
          {"stage": "eval", "model": "qwen3-4b-base--base", "gpu_hours": 2.0, "steps": None}]
    # measured: 10 steps at 1800 s/step = twice the forecast's 900 s/step (73 GPU-h / 4 GPUs / 73 steps)
    metrics(tmp_path, "qwen3-4b-base", "grlo", [{"step": i, "time/step": 1800.0} for i in range(1, 11)])
    runs = S.training_runs(tmp_path, {("qwen3-4b-base", "grlo"): 73, ("qwen3-4b-base", "grlo-rlvr"): 80})
    assert [(t.stage, t.step, t.total, t.finished) for t in runs] == [("grlo", 10, 73, False),
                                                                     ("grlo-rlvr", 0, 80, False)]
    hours, notes = S.eta_hours(cfg, tmp_path, runs, fc, gpus=4)
    ratio = 1800.0 / (73.0 * 3600 / 4 / 73)
    want = (63 * 1800 / 3600 * 4 + 100.0 * ratio + 2.0) / 4
    assert ratio == 2.0 and hours == pytest.approx(want)
    assert any("63 steps x 1800.0 s measured" in n for n in notes)
    assert any("x 2.00 (measured/forecast)" in n for n in notes)
    # a finished stage and a generated model drop out
    (tmp_path / "checkpoints/qwen3-4b-base/grlo/final").mkdir()
    for b in cfg["evaluation"]["benchmarks"]:
        p = tmp_path / "generations/qwen3-4b-base--base" / f"{b}.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    runs = S.training_runs(tmp_path, {("qwen3-4b-base", "grlo"): 73, ("qwen3-4b-base", "grlo-rlvr"): 80})
    hours, _ = S.eta_hours(cfg, tmp_path, runs, fc, gpus=4)
    assert hours == pytest.approx(100.0 / 4)  # no measured ratio left for the pending stage: the forecast itself


def test_rlvr_partial_metrics_count_while_running(tmp_path):
    metrics(tmp_path, "b", "rlvr", [{"step": 1, "time_s": 5.0}, {"step": 2, "time_s": 9.0}], name=S.PARTIAL)
    (t,) = S.training_runs(tmp_path, {("b", "rlvr"): 10})
    assert (t.step, t.sec_per_step, t.finished) == (2, 4.0, False)


def test_cli_prints_jobs_step_and_eta(tmp_path, capsys):
    meta(tmp_path, "models/qwen3-4b-base/config.json", "fetch_model", 9, 0, 120)
    metrics(tmp_path, "qwen3-4b-base", "grlo", [{"step": i, "time/step": 300.0} for i in range(1, 6)])
    tsv = tmp_path / "benchmarks" / "train_grlo" / "qwen3-4b-base.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                   "7200.0\t2:00:00\t1\t1\t1\t1\t0\t0\t100\t7000\n")
    (tsv.parent / "qwen3-4b-base.device.json").write_text(json.dumps(
        {"gpus": [{"name": "NVIDIA H100"}] * 4, "gpus_requested": 4, "gpu_model": "NVIDIA H100", "gpu_count": 4}))
    rc = main(["status", "--config", *PAPER, "--directory", str(tmp_path), "--gpus", "8"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "jobs: 1 done, 0 running (jobs left: add --dry-run)" in out
    assert "fetch_model          done    1  (2 min measured)" in out
    assert "qwen3-4b-base/grlo: step 5/15 (running, 300.0 s/step measured)" in out  # 15 x floor(1000/512)
    assert "ETA: " in out and "on 8 GPU(s)" in out
    assert "measured (benchmark TSVs):" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("grlo ") and "jobs" in x)
    assert "1 jobs  2 h 00 min wall  8.00 GPU-h of" in line and "forecast" in line  # 2 h x 4 GPUs
