"""Paper-mode dry runs (no network, no GPU): the DAG lists the right jobs for each artifact, with the right resources."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grlo import config as C
from grlo import workflow as W

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def dry_run(*args: str, tmp_path: Path) -> str:
    # outdir in a temp dir: a dry run must not even write the resolved config into the repo
    r = subprocess.run([SNAKEMAKE, "-n", "--cores", "all", "--nolock", *args, "--config", f"outdir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def job_counts(text: str) -> dict[str, int]:
    block = text.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def rules_with(text: str, needle: str) -> set[str]:
    """Names of the rules whose dry-run job block contains `needle`."""
    out = set()
    for block in text.split("\nrule ")[1:]:
        if needle in block:
            out.add(block.split(":", 1)[0].strip())
    return out


@pytest.fixture(scope="module")
def paper_cfg():
    return C.load([ROOT / "config/config.yaml"])


def test_full_paper_dag(tmp_path, paper_cfg):
    text = dry_run(tmp_path=tmp_path)
    counts = job_counts(text)
    n_bench = len(paper_cfg["evaluation"]["benchmarks"])
    n_models = len(W.eval_models(paper_cfg))
    assert counts["download_benchmark"] == n_bench
    assert counts["generate"] == n_models
    assert counts["score"] == n_models * n_bench
    assert counts["train_grlo"] == 1 + len(paper_cfg["backbones"]["extra"])
    for rule in ("download_prompts", "prepare_prompts", "fetch_model", "table", "table1", "claims", "gpu_hours", "forecast", "figures"):
        assert counts.get(rule), rule
    # train_grlo for Qwen3-4B-Base requests the launcher's 4 GPUs
    grlo_block = next(b for b in text.split("\nrule ")[1:] if b.startswith("train_grlo:") and "backbone=qwen3-4b-base" in b)
    assert re.search(r"gpu=4\b", grlo_block)
    # RLVR: the public checkpoint is fetched by default; only grlo-rlvr trains
    assert "models/general-reasoner-qwen3-4b" in text
    assert counts["train_rlvr"] == 1 and "stage=grlo-rlvr" in text and "stage=rlvr," not in text


def test_table1_builds_only_what_it_needs(tmp_path):
    counts = job_counts(dry_run(str(tmp_path / "results/table1.csv"), tmp_path=tmp_path))
    assert counts["table1"] == 1 and "table" not in counts and "claims" not in counts and "figures" not in counts
    assert counts["train_grlo"] == 1  # the primary backbone only: no extra backbones for table 1
    assert {"download_prompts", "fetch_model", "generate", "score"} <= set(counts)


def test_table2_needs_training_but_no_evaluation(tmp_path):
    counts = job_counts(dry_run(str(tmp_path / "results/table2.csv"), tmp_path=tmp_path))
    assert counts["train_grlo"] == 1 and "generate" not in counts and "score" not in counts
    # every training run table 2 reads from the benchmarks directory is built first: the GRLO -> RLVR stage's row
    # was missing from a smoke run's table 2 when the stage happened to finish after the table
    assert counts["train_rlvr"] == 1  # the grlo-rlvr stage (paper: the RLVR baseline is the public checkpoint)


def test_table2_waits_for_every_training_run_it_reads(paper_cfg):
    smoke = C.load([ROOT / "config/config.yaml", ROOT / "config/smoke.yaml"])
    for cfg in (paper_cfg, smoke):
        inputs = W.table_extra_inputs(cfg, "table2")
        own = [m for m in W.training_metrics(cfg) if f"/{cfg['backbones']['primary']}/" in m]
        assert own and set(own) <= set(inputs), inputs
    assert any(p.endswith("/grlo-rlvr/metrics.jsonl") for p in W.table_extra_inputs(smoke, "table2"))
    assert any(p.endswith("/rlvr/metrics.jsonl") for p in W.table_extra_inputs(smoke, "table2"))


def test_rlvr_train_mode_lists_grpo_training(tmp_path):
    overlay = tmp_path / "train.yaml"
    overlay.write_text("rlvr: {mode: train}\n")
    text = dry_run(str(tmp_path / "results/table1.csv"), "--configfile", "config/config.yaml", str(overlay), tmp_path=tmp_path)
    counts = job_counts(text)
    assert counts["train_rlvr"] == 2 and counts["download_rlvr_data"] == 1
    assert "models/general-reasoner-qwen3-4b" not in text


def test_invalid_config_stops_the_workflow_with_one_line(tmp_path):
    r = subprocess.run([SNAKEMAKE, "-n", "--nolock", "--config", "mode=laptop", f"outdir={tmp_path}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert r.returncode != 0
    assert "invalid value for 'mode': \"laptop\" (allowed: one of 'paper', 'smoke')" in r.stdout + r.stderr
