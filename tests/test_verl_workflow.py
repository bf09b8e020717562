"""The paper workflow runs train_grlo in the verl image (container.verl_image) on n_gpus_per_node x nnodes GPUs; the
native engine keeps the main image; every other rule keeps the main image."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grlo import config as C

ROOT = Path(__file__).resolve().parent.parent
PAPER = str(ROOT / "config" / "config.yaml")
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TARGET = "checkpoints/qwen3-4b-base/grlo/metrics.jsonl"

# stub apptainer: logs its arguments; `pull` creates the image file; `exec` records the job and fails it (nothing runs)
STUB = """#!/bin/bash
echo "$*" >> "$STUB_LOG"
case "$1" in --version|version) echo "apptainer version 1.4.0"; exit 0;; esac
for a in "$@"; do [ "$a" = pull ] && { dest="${@: -2:1}"; : > "$dest"; exit 0; }; done
exit 3
"""


def workdir(tmp_path: Path) -> Path:
    """A run directory whose train_grlo inputs exist, so that train_grlo is the only job."""
    work = tmp_path / "run"
    (work / "data/prompts/qwen3-4b-base").mkdir(parents=True)
    (work / "data/prompts/qwen3-4b-base/prepared.jsonl").write_text("")
    (work / "data/benchmarks").mkdir(parents=True)
    (work / "data/benchmarks/math500.jsonl").write_text("")  # the verl engine's validation file
    for m in ("qwen3-4b-base", C.load([PAPER])["reward_model"]):
        (work / "models" / m).mkdir(parents=True)
    return work


def snakemake(work: Path, *args: str, overlay: Path | None = None, stub: Path | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if stub:
        env["PATH"] = f"{stub}:{env['PATH']}"
        env["STUB_LOG"] = str(stub / "apptainer.log")
    configs = [PAPER, *([str(overlay)] if overlay else [])]
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--nolock", *args,
                           "--configfile", *configs, "--", TARGET], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)


def train_grlo_block(text: str) -> str:
    return next(b for b in text.split("\nrule ")[1:] if b.startswith("train_grlo:"))


@pytest.mark.parametrize("overlay,gpus,nodes", [("", 4, 1), ("grlo: {nnodes: 2, n_gpus_per_node: 8}\n", 16, 2)])
def test_paper_dry_run_requests_the_launchers_gpus(tmp_path, overlay, gpus, nodes):
    work = workdir(tmp_path)
    o = None
    if overlay:
        o = tmp_path / "o.yaml"
        o.write_text(overlay)
    r = snakemake(work, "-n", "-p", "--cores", "all", overlay=o)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    block = train_grlo_block(r.stdout + r.stderr)
    assert re.search(rf"gpu={gpus}\b", block) and re.search(rf"nodes={nodes}\b", block)
    assert block.count("grlo train-grlo --config") == 1  # the rule stays one grlo command
    assert "--val-data data/benchmarks/math500.jsonl" in block  # verl validates on the rule-scored benchmark


@pytest.mark.parametrize("engine,image_key", [("verl", "verl_image"), ("native", "image")])
def test_train_grlo_runs_in_the_engines_image(tmp_path, engine, image_key):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "apptainer").write_text(STUB)
    (stub / "apptainer").chmod(0o755)
    (tmp_path / "e.yaml").write_text(f"grlo: {{engine: {engine}}}\n")
    work = workdir(tmp_path)
    r = snakemake(work, "--cores", "1", "--use-singularity", "--allowed-rules", "train_grlo", overlay=tmp_path / "e.yaml",
                  stub=stub)
    assert r.returncode != 0 and (stub / "apptainer.log").exists(), r.stdout[-3000:] + r.stderr[-3000:]
    log = (stub / "apptainer.log").read_text().splitlines()
    pulled = {line.split()[-2]: line.split()[-1] for line in log if line.startswith("pull ")}
    execs = [line for line in log if line.startswith("exec ") and "grlo train-grlo" in line]
    assert len(execs) == 1, log
    image = next(url for dest, url in pulled.items() if dest in execs[0])
    assert image == C.load([PAPER])["container"][image_key]
