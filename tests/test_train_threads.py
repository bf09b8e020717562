"""`--threads N` of train-grlo and train-rlvr: the workflow passes Snakemake's `threads` as a flag (no environment
prefix in the rule), the flag sets the thread count for verl's CPU workers and, for train-rlvr (TRL computes in
that process), for torch here; bad values are one line naming the flag."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grlo import cli
from grlo.train import threads

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


@pytest.mark.parametrize("cmd", ["train-grlo", "train-rlvr"])
@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_are_one_line(cmd, bad, capsys):
    stage = ["--stage", "rlvr"] if cmd == "train-rlvr" else []
    with pytest.raises(SystemExit) as e:
        cli.main([cmd, "--config", "config/config.yaml", "--backbone", "qwen3-4b-base", *stage, "--dry-run",
                  "--threads", bad])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code != 0 and "--threads" in err[-1] and ">= 1" in err[-1] and "Traceback" not in "\n".join(err)


def test_threads_reach_verls_workers_and_this_process_torch(monkeypatch):
    import torch

    before = torch.get_num_threads()
    for k in ("GRLO_CPU_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(k, raising=False)
    threads.apply(None, torch_here=True)  # no flag: nothing changes
    assert "GRLO_CPU_THREADS" not in os.environ and torch.get_num_threads() == before
    threads.apply(3, torch_here=False)  # train-grlo: verl's workers only
    assert os.environ["GRLO_CPU_THREADS"] == "3" and "OMP_NUM_THREADS" not in os.environ
    assert torch.get_num_threads() == before
    try:
        threads.apply(1, torch_here=True)  # train-rlvr: TRL computes in this process
        assert os.environ["GRLO_CPU_THREADS"] == os.environ["OMP_NUM_THREADS"] == "1"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_training_rules_pass_snakemakes_threads_as_the_flag(tmp_path):
    """The smoke DAG's training jobs get --threads with their Snakemake threads (resources.threads_*: 1), capped at
    --cores, and no environment prefix in the shell command."""
    overlay = tmp_path / "threads.yaml"
    overlay.write_text("resources: {threads_grlo: 1, threads_rlvr: 5}\n")
    r = subprocess.run([SNAKEMAKE, "-n", "-p", "--cores", "2", "--nolock", "--configfile", "config/smoke.yaml",
                        str(overlay), "--config", f"outdir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1",
                            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    grlo = [line for line in out.splitlines() if "grlo train-grlo " in line]
    rlvr = [line for line in out.splitlines() if "grlo train-rlvr " in line]
    assert grlo and len(rlvr) == 2
    assert all(re.search(r"--threads 1\b", line) for line in grlo)
    assert all(re.search(r"--threads 2\b", line) for line in rlvr)  # 5 asked, capped at --cores 2
    assert not re.search(r"(GRLO_CPU_THREADS|OMP_NUM_THREADS)=", "\n".join(grlo + rlvr))
