"""`--threads N` of the training commands: the CPU threads the job may use. The workflow passes Snakemake's `threads`
(resources.threads_grlo / threads_rlvr, capped at --cores), so a job that shares the cores with others does not start
more compute threads than it holds.

train-grlo: verl's CPU workers (`GRLO_CPU_THREADS`, read by grlo.train.verl.cpu in each Ray worker, which Ray starts
with one OpenMP thread). train-rlvr: the same, and this process's torch (TRL computes here; `OMP_NUM_THREADS` for
the processes it starts, e.g. under `accelerate launch`). Without the flag nothing is changed.
"""

from __future__ import annotations

import argparse
import os
import sys


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads >= 1")
    return n


def add_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads this job may use (the workflow passes Snakemake's threads); default: all")


def apply(n: int | None, torch_here: bool) -> None:
    """Set the thread count of `--threads` for verl's CPU workers and, with torch_here, for this process's torch."""
    if n is None:
        return
    os.environ["GRLO_CPU_THREADS"] = str(n)
    if torch_here:
        os.environ["OMP_NUM_THREADS"] = str(n)
        torch = sys.modules.get("torch")  # already imported: its pool is sized; set it as well
        if torch is not None:
            torch.set_num_threads(n)
