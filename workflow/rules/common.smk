# Shared setup: config validation, the output prefix, and the resolved config file every command reads.
import os
import sys

from grlo import config as GC
from grlo import workflow as W
from grlo.errors import GrloError

try:
    GC.validate(
        config, source="config (" + ", ".join(map(str, workflow.configfiles)) + ")"
    )
except GrloError as e:
    sys.exit(f"error: {e}")

OUTDIR = W.prefix(config).rstrip("/")
# Commands read the merged config (config.yaml + overlays + --config) from one file, rewritten only on change.
CFG = W.write_resolved_config(config, os.path.join(OUTDIR, ".grlo", "config.json"))
IMAGE = GC.get(config, "container.image")
# Snakemake never passes --nv to Apptainer, and the workflow profile (workflow/profiles/default) is only picked up
# with --workflow-profile for a top-level Snakefile: add it here so `--use-singularity` always sees the GPUs.
_ds = workflow.deployment_settings
if _ds is not None and "--nv" not in (_ds.apptainer_args or "").split():
    _ds.apptainer_args = f"{_ds.apptainer_args or ''} --nv".strip()
# --sdm conda: the GPU stack (vLLM) in paper mode, the CPU pins in smoke mode; grlo itself is installed by the
# env's post-deploy script.
ENV = (
    "../../envs/grlo-gpu.yaml" if config["mode"] == "paper" else "../../envs/grlo.yaml"
)


wildcard_constraints:
    model=r"[a-z0-9.\-]+--[a-z0-9\-]+",
    bench=r"[a-z0-9_]+",
    name=r"[A-Za-z0-9._\-]+",
    backbone=r"[A-Za-z0-9._\-]+",


def out(path):
    """Every output lives under the mode's outdir (smoke/ for smoke mode, the workflow dir for paper mode)."""
    return os.path.join(OUTDIR, path)


def log_path(rule, stem):
    return out(f"logs/{rule}/{stem}.log")


def bench_path(rule, stem):
    return out(f"benchmarks/{rule}/{stem}.tsv")


def all_targets():
    return W.all_targets(config)
