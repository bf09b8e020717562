"""GPU-hour accounting: device records, Snakemake benchmark TSV parsing, aggregation per stage and model."""

import json
import sys
import types

import pytest

from grlo import accounting
from grlo.accounting import aggregate, collect_jobs, read_benchmark_tsv, record_device, stage_of
from grlo.config import REPO_ROOT
from grlo.errors import GrloError

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def tsv(path, *rows):
    """rows: (seconds, cpu_seconds)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{s}\t0:00:00\t100.5\t200.1\t90.0\t95.0\t1.0\t2.0\t50.0\t{c}\n" for s, c in rows]
    path.write_text(HEADER + "".join(lines))
    return path


def device(path, count, model="NVIDIA H100 80GB HBM3"):
    path.write_text(json.dumps({"gpu_count": count, "gpu_model": model if count else None}))


def test_gpu_hours_from_tsv_and_device_record(tmp_path):
    root = tmp_path / "benchmarks"
    # GRLO: 4 GPUs x 5400 s = 6 GPU-h
    device(tsv(root / "train_grlo" / "qwen3-4b-base.tsv", (5400.0, 20000.0)).with_name("qwen3-4b-base.device.json"), 4)
    # two eval jobs of one model: 1 GPU x (1800 + 900) s = 0.75 GPU-h
    for bench, s in (("math500", 1800.0), ("aime24", 900.0)):
        t = tsv(root / "generate" / "qwen3-4b-base--grlo" / f"{bench}.tsv", (s, 100.0))
        device(t.with_name(f"{bench}.device.json"), 1)
    # a CPU job: 0 GPU-hours, CPU-hours from cpu_time
    t = tsv(root / "score" / "qwen3-4b-base--grlo" / "math500.tsv", (30.0, 7200.0))
    device(t.with_name("math500.device.json"), 0)
    jobs = collect_jobs(root)
    assert len(jobs) == 4
    agg = {(g["stage"], g["model"]): g for g in aggregate(jobs)}
    assert agg[("grlo", "qwen3-4b-base")]["gpu_hours"] == pytest.approx(6.0)
    assert agg[("grlo", "qwen3-4b-base")]["max_gpus"] == 4
    assert agg[("grlo", "qwen3-4b-base")]["gpu_model"] == "NVIDIA H100 80GB HBM3"
    assert agg[("generate", "qwen3-4b-base--grlo")]["gpu_hours"] == pytest.approx(0.75)
    assert agg[("generate", "qwen3-4b-base--grlo")]["jobs"] == 2
    cpu = agg[("score", "qwen3-4b-base--grlo")]
    assert cpu["gpu_hours"] == 0.0 and cpu["cpu_hours"] == pytest.approx(2.0) and cpu["gpu_model"] == "none (CPU)"


def test_repeat_rows_are_summed_and_missing_device_record_is_not_guessed(tmp_path):
    root = tmp_path / "benchmarks"
    tsv(root / "train_rlvr" / "qwen3-4b-base.tsv", (100.0, 10.0), (300.0, 30.0))
    (job,) = collect_jobs(root)
    assert job.runs == 2 and job.wall_s == 400.0 and job.cpu_s == 40.0
    assert job.stage == "rlvr" and job.gpu_hours is None  # no device.json: unknown, never invented
    (g,) = aggregate([job])
    assert g["gpu_hours"] is None and g["unrecorded_jobs"] == 1


def test_non_snakemake_tsv_ignored_and_malformed_rejected(tmp_path):
    root = tmp_path / "benchmarks"
    (root / "results").mkdir(parents=True)
    (root / "results" / "ppo.tsv").write_text("tokens\tseconds\n1\t2\n")
    assert collect_jobs(root) == []
    bad = root / "generate" / "m--base" / "x.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text(HEADER + "12.0\t0:00:12\tNA\n")
    with pytest.raises(GrloError, match="x.tsv: line 2"):
        collect_jobs(root)
    bad.write_text(HEADER + "abc\t0\t1\t1\t1\t1\t1\t1\t1\t1\n")
    with pytest.raises(GrloError, match="'s'"):
        read_benchmark_tsv(bad)


@pytest.mark.parametrize("rule,wc,stage", [
    ("train_grlo", "qwen3-4b-base", "grlo"), ("train_rlvr", "qwen3-4b-base", "rlvr"),
    ("train_grlo-rlvr", "qwen3-4b-base", "grlo-rlvr"), ("train_grlo_rlvr", "qwen3-4b-base", "grlo-rlvr"),
    ("train_rlvr", "grlo-rlvr/qwen3-4b-base", "rlvr"), ("train", "grlo-rlvr/qwen3-4b-base", "grlo-rlvr"),
    ("generate", "qwen3-4b-base--grlo/math500", "generate")])
def test_stage_of(rule, wc, stage):
    assert stage_of(rule, wc) == stage


def fake_nvml(monkeypatch, names):
    mod = types.ModuleType("pynvml")
    mod.nvmlInit = lambda: None
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetCount = lambda: len(names)
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetUUID = lambda h: f"GPU-{h:04d}-uuid"
    mod.nvmlDeviceGetName = lambda h: names[h].encode()
    mod.nvmlSystemGetDriverVersion = lambda: "580.1"
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=80 * (1 << 30))
    monkeypatch.setitem(sys.modules, "pynvml", mod)


def test_record_device_charges_min_of_requested_and_visible(tmp_path, monkeypatch):
    fake_nvml(monkeypatch, ["NVIDIA H100 80GB HBM3"] * 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_NNODES", raising=False)
    monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)
    rec = record_device(tmp_path / "d.json", 4)
    assert rec["probe"] == "nvml" and rec["gpus_visible"] == 8 and rec["gpu_count"] == 4
    assert rec["gpu_model"] == "NVIDIA H100 80GB HBM3" and rec["gpus"][0]["memory_mib"] == 80 * 1024
    assert json.loads((tmp_path / "d.json").read_text())["gpu_count"] == 4
    # CUDA_VISIBLE_DEVICES narrows what NVML sees (indices and UUIDs)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-0005-uuid")
    rec = record_device(None, 4)
    assert rec["gpus_visible"] == 2 and rec["gpu_count"] == 2 and [g["index"] for g in rec["gpus"]] == [2, 5]
    assert "warning" in rec
    # a CPU job (0 requested) is charged 0 GPUs even on a GPU box
    rec = record_device(None, 0)
    assert rec["gpu_count"] == 0 and rec["gpu_model"] is None
    # multi-node SLURM job: this node's GPUs x nodes
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("SLURM_NNODES", "4")
    rec = record_device(None, 8)
    assert rec["gpus_per_node"] == 8 and rec["nodes"] == 4 and rec["gpu_count"] == 32
    with pytest.raises(GrloError):
        record_device(None, -1)


def test_record_device_mixed_models_and_no_gpu(tmp_path, monkeypatch):
    fake_nvml(monkeypatch, ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"])
    for var in ("CUDA_VISIBLE_DEVICES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"):
        monkeypatch.delenv(var, raising=False)
    assert record_device(None, 2)["gpu_model"].startswith("mixed: ")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails -> torch.cuda (CPU here) -> 0 GPUs
    rec = record_device(tmp_path / "cpu.json", 1, use_torch=False)
    assert rec["probe"] == "none" and rec["gpu_count"] == 0 and rec["cpu_count"] >= 1 and rec["cpu_model"]


def test_cli_writes_csv_and_markdown(tmp_path):
    from grlo.cli import main
    from grlo.report.common import read_results_csv

    root = tmp_path / "benchmarks"
    t = tsv(root / "train_grlo" / "qwen3-4b-base.tsv", (3600.0, 100.0))
    device(t.with_name("qwen3-4b-base.device.json"), 2)
    out = tmp_path / "results" / "gpu_hours.csv"
    assert main(["gpu-hours", "--benchmarks-dir", str(root), "--output", str(out), "--jobs-output",
                 str(tmp_path / "results" / "jobs.csv"), "--config", str(REPO_ROOT / "config" / "config.yaml"),
                 str(REPO_ROOT / "config" / "smoke.yaml")]) == 0
    header, rows = read_results_csv(out)
    assert header[0].startswith("mode: smoke") and rows[0]["gpu_hours"] == "2.0000"
    assert (tmp_path / "results" / "gpu_hours.md").exists() and (tmp_path / "results" / "jobs.csv").exists()
    assert accounting.JOB_COLUMNS[0] == "rule"
