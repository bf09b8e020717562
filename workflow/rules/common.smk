# Shared setup: config validation, the output prefix, and the resolved config file every command reads.
import os
import re
import sys

from snakemake.settings.types import DeploymentMethod

from grlo import config as GC
from grlo import lock_sources as GLS
from grlo import workflow as W
from grlo.errors import GrloError

try:
    GC.validate(
        config, source="config (" + ", ".join(map(str, workflow.configfiles)) + ")"
    )
    # lock.frozen: an unpinned or changed source stops the run here, before any download
    GLS.check_frozen(config)
except GrloError as e:
    sys.exit(f"error: {e}")

OUTDIR = W.prefix(config).rstrip("/")
# Commands read the merged config (config.yaml + overlays + --config) from one file, rewritten only on change.
CFG = W.write_resolved_config(config, os.path.join(OUTDIR, ".grlo", "config.json"))
# container.image, pinned to container.digest when set
IMAGE = W.container_image(config)
# Snakemake never passes --nv to Apptainer, and the workflow profile (workflow/profiles/default) is only picked up
# with --workflow-profile for a top-level Snakefile: add --nv and the /cache bind (config container.cache) here so
# that a plain `snakemake --sdm apptainer` sees the GPUs and writable caches. A bind of /cache given on the command
# line (--apptainer-args "--bind DIR:/cache") wins.
_ds = workflow.deployment_settings
if _ds is not None and "--nv" not in (_ds.apptainer_args or "").split():
    _ds.apptainer_args = f"{_ds.apptainer_args or ''} --nv".strip()
if _ds is not None and not re.search(r":/cache(:\S*)?(\s|$)", _ds.apptainer_args or ""):
    _cache = os.path.expanduser(GC.get(config, "container.cache") or "~/.cache/grlo")
    # apptainer refuses a bind whose host side is missing
    if DeploymentMethod.APPTAINER in (_ds.deployment_method or ()):
        os.makedirs(_cache, exist_ok=True)
    _ds.apptainer_args = f"{_ds.apptainer_args} --bind {_cache}:/cache"
if (
    config["mode"] == "paper"
    and not GC.get(config, "container.digest")
    and _ds is not None
    and DeploymentMethod.APPTAINER in (_ds.deployment_method or ())
):
    print(
        f"warning: container.digest is not set: {IMAGE} is a movable tag (docs/gpu.md, 'image digest')",
        file=sys.stderr,
    )
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


def report_page(name, category, caption):
    """An HTML page of the Snakemake report (results/report/NAME.html), shown inline under `category`."""
    return report(
        out(f"results/report/{name}.html"),
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory="Pages",
        labels={"page": name},
    )
