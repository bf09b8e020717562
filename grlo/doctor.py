"""`grlo doctor`: a pre-flight checklist, one line per item, before a run spends hours or money.

    grlo doctor --config config/config.yaml [--resources gpu=4] [--slurm] [--sdm apptainer|conda|none]

Each line is `[ ok ]`, `[warn]`, `[FAIL]` or `[skip]`, what was checked, and why / how to fix it. The exit status is 1
when any item would make the run fail later (0 otherwise; 2 for a config that does not load).

What it checks, and from where:
  gpus        visible GPUs (NVML, then torch.cuda; grlo.accounting.probe_devices) against the `gpu` resource of every
              GPU rule the run needs. The rule's GPU count is the workflow's own: grlo.workflow.rule_gpus, which the
              rules' `gpu=` resources read.
  resources   `--resources gpu=N` (what you will pass to snakemake) against the largest rule: Snakemake lowers a
              job's resource to the global limit without a word, so an 8-GPU rule would start on N.
  trainer     the GRLO trainer's process count (grlo.n_gpus_per_node x grlo.nnodes) against its rule's GPUs.
  memory      per-GPU memory against a lower bound from the plan (model states and weights, activations excluded):
              GRLO (FSDP): 16 B/param for actor and critic each (fp32 weights, grads, Adam) / GPUs + the reward
              model's bf16 weights unless offloaded; RLVR (ZeRO-3): 16 B/param / GPUs + vLLM's colocated share;
              generation: bf16 weights / tensor parallel within vLLM's gpu_memory_utilization.
  container   apptainer/singularity on PATH and each image (local .sif present, or the registry reachable; else
              its own SIF name and `make sif`); the digest pinned; --sdm conda with the verl engine refused.
  driver      the host driver (nvidia-smi) against the CUDA of each image the run starts (IMAGES: 13.0 -> R580,
              12.8 -> R570).
  images      each image started as a job starts it (apptainer exec --home <workdir> --nv --bind cache:/cache),
              importing its stack with a CUDA tensor (torch, vLLM, TRL/DeepSpeed; verl and flash-attn in verl's).
  credentials the HF token as the job sees it (exported HF_TOKEN, or a token file in the /cache bind: a host
              `huggingface-cli login` is hidden by --home and HF_HOME=/cache/huggingface); WANDB_API_KEY for W&B.
  slurm       (--slurm) each GPU rule's profile time limit against the forecast's longest job x 1.25.
  custom      evaluation.custom_models: a local directory with config.json, or a hub model reachable / cached.
  disk        output and cache directories (container.cache with Apptainer; GRLO_CACHE and HF_HOME otherwise)
              writable, free space against the run's storage estimate (grlo/report/storage.py, also printed by grlo forecast).
  hub         huggingface.co reachable, or (offline) every hub repo the run needs already in the cache (the snapshot of
              the pinned revision where the registry or the lock file pins one).
  pins        every source pinned by the registry or the lock file (grlo/lock.py); unpinned with lock.frozen: fail.
  gated       a Hugging Face token when the run needs a gated repo (Llama-3.2, GPQA); access itself is checked only
              when the hub is reachable (offline it cannot be known).
  judge       AlpacaEval 2's judge: OPENAI_API_KEY, a local OpenAI-compatible base_url, or a local judge model.
  prompts     the prompt count against grlo.train_batch_size (the trainer's own batch-size rules).
  sandbox     the code sandbox's isolation (bubblewrap with user namespaces) for model-written code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from grlo import config as _config
from grlo import lock, lock_sources, registry
from grlo import workflow as W
from grlo.accounting import probe_devices
from grlo.data import resolve_source_path
from grlo.errors import GrloError
from grlo.eval.sandbox import isolation_mode
from grlo.io import read_input
from grlo.models import custom
from grlo.models.fetch import cache_root
from grlo.report import forecast
from grlo.report import storage as S
from grlo.report.common import load_config
from grlo.report.forecast import SLURM_MARGIN, job_runtimes
from grlo.train.train_grlo import verl_batch

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
MARK = {OK: "[ ok ]", WARN: "[warn]", FAIL: "[FAIL]", SKIP: "[skip]"}
GIB = 1 << 30
# Hub repos that need accepted terms and a token. The registry may also mark an entry `gated: true`.
GATED_REPOS = {"meta-llama/Llama-3.2-3B", "Idavidrein/gpqa"}
HUB_URL = "https://huggingface.co/api/models/Qwen/Qwen3-4B-Base"


@dataclass
class Check:
    status: str
    what: str
    why: str = ""

    def line(self) -> str:
        return f"{MARK[self.status]} {self.what}" + (f": {self.why}" if self.why else "")


class Probe:
    """Everything the checks ask the machine; tests replace it with a fake."""

    def gpus(self) -> tuple[list[dict], str]:
        if shutil.which("nvidia-smi") is None:
            # no driver tools: NVML is absent too; torch.cuda would only import a multi-second library to say no
            gpus, how = probe_devices(use_torch=False)
            return gpus, how if gpus else "no nvidia-smi, no NVML driver library"
        return probe_devices(use_torch=True)

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def env(self, name: str) -> str | None:
        return os.environ.get(name) or None

    def disk_free(self, path: Path) -> tuple[int, int]:
        """(free bytes, device id) of the file system holding `path` (its nearest existing parent)."""
        p = path
        while not p.exists() and p != p.parent:
            p = p.parent
        return shutil.disk_usage(p).free, p.stat().st_dev

    def writable(self, path: Path) -> bool:
        p = path
        while not p.exists() and p != p.parent:
            p = p.parent
        return os.access(p, os.W_OK | os.X_OK)

    def reachable(self, url: str, timeout: float = 5.0) -> bool:
        """Any HTTP answer (401/403 included) means the host is reachable."""
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
            return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def hf_token(self) -> str | None:
        tok = self.env("HF_TOKEN") or self.env("HUGGING_FACE_HUB_TOKEN")
        if tok:
            return tok
        try:
            from huggingface_hub import get_token  # optional: huggingface_hub

            return get_token()
        except Exception:  # an unreadable token file is "no token"
            return None

    def hf_cached(self, repo: str, repo_type: str, revision: str | None = None) -> bool:
        """The repo has a snapshot in the Hugging Face cache (the pinned revision's, when one is pinned)."""
        root = Path(self.env("HF_HUB_CACHE") or Path(self.env("HF_HOME") or Path.home() / ".cache/huggingface") / "hub")
        d = root / f"{repo_type}s--{repo.replace('/', '--')}" / "snapshots"
        if revision:
            return (d / revision).is_dir()
        return d.is_dir() and any(d.iterdir())

    def hf_access(self, repo: str, repo_type: str, token: str) -> str | None:
        """None when the token may read the repo, else the reason (only asked when the hub is reachable)."""
        try:
            from huggingface_hub import auth_check  # optional: huggingface_hub

            auth_check(repo, repo_type=repo_type, token=token)
            return None
        except Exception as e:  # GatedRepoError, RepositoryNotFoundError, network: all mean "not readable now"
            return type(e).__name__

    def isolation(self) -> str:
        return isolation_mode()

    def run(self, cmd: list[str], timeout: float = 900.0) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of a command; a missing program or a timeout is a failed run."""
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return 127, "", f"{type(e).__name__}: {e}"
        return p.returncode, p.stdout, p.stderr

    def driver_version(self) -> str | None:
        """The host's NVIDIA driver version (nvidia-smi), None without one."""
        exe = self.which("nvidia-smi")
        if not exe:
            return None
        rc, out, _ = self.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], timeout=60)
        first = out.strip().splitlines()[0].strip() if rc == 0 and out.strip() else ""
        return first or None

    def hf_token_file(self) -> Path | None:
        """The host's `huggingface-cli login` token file, when there is one."""
        try:
            from huggingface_hub import constants  # optional: huggingface_hub

            p = Path(constants.HF_TOKEN_PATH)
        except Exception:  # no huggingface_hub in the host env
            p = Path(self.env("HF_HOME") or Path.home() / ".cache" / "huggingface") / "token"
        return p if p.is_file() else None

    def file_exists(self, path: Path) -> bool:
        return path.is_file()


# ------------------------------------------------------------------------------------------------ what the run needs


def rule_gpus(cfg: dict) -> dict[str, int | None]:
    """{rule: GPUs per job} as the workflow reserves them (grlo.workflow.rule_gpus, which the rules' `gpu=` read);
    None when this config cannot say (reported, never guessed)."""
    try:
        return dict(W.rule_gpus(cfg))
    except (GrloError, KeyError, TypeError, ValueError):
        return {r: None for r in ("generate", "lmeval_fewshot", "score", "train_grlo", "train_rlvr")}


needed_rules, fetched_models = S.needed_rules, S.fetched_models


def storage_estimate(cfg: dict, grlo_steps: int | None = None) -> tuple[float, list[str]]:
    """The run's storage estimate (grlo.report.forecast.run_storage), or with a given GRLO step count."""
    return forecast.run_storage(cfg) if grlo_steps is None else S.storage_estimate(cfg, grlo_steps)


def _params(name: str, mode: str) -> float:
    return S.params(name, mode)


def prompt_count(cfg: dict, outdir: Path) -> tuple[int | None, str]:
    p = _config.get(cfg, "prompts.path")
    if p:
        f = resolve_source_path(p)
        if not f.is_file():
            return None, f"prompts.path {p} does not exist"
        return sum(1 for line in f.read_text(encoding="utf-8").splitlines() if line.strip()), str(f)
    raw = outdir / "data" / "prompts" / "raw.jsonl"
    if raw.is_file():
        return sum(1 for line in raw.read_text(encoding="utf-8").splitlines() if line.strip()), str(raw)
    if _config.get(cfg, "prompts.sha256") == OFFICIAL_PROMPTS_SHA256:
        return 1000, "the official train.jsonl pinned by prompts.sha256 (1,000 prompts; results/README.md)"
    return None, "known only after download_prompts"


OFFICIAL_PROMPTS_SHA256 = "80463c5ec34f3fed7d1db6c9fb2c6b66fc00dca7d021c6f045edeb42b02c8930"


def hub_repos(cfg: dict) -> list[tuple[str, str]]:
    """(repo, type) of every hub model and dataset the run fetches."""
    return list(dict.fromkeys((r, t) for r, t, _, _ in hub_sources(cfg)))


def hub_sources(cfg: dict) -> list[tuple[str, str, str | None, str]]:
    """(repo, type, pinned revision or None, the output that holds it once fetched, relative to outdir) of every hub
    model and dataset the run fetches; the revision is the registry's pin, else the lock file's (grlo/lock.py)."""
    mode = cfg["mode"]
    out = []

    def rev(section: str, name: str, src: dict) -> str | None:
        if src.get("revision"):
            return src["revision"]
        e = ((lock.read(cfg).get(section) or {}).get(name) or {}) if lock.lock_path(cfg) else {}
        return e.get("revision") if e.get("repo") == src.get("repo") else None

    for name in fetched_models(cfg):
        src = registry.source(registry.model(name), mode, name)
        if src.get("kind") == "hub":
            out.append((src["repo"], "model", rev("models", name, src), f"models/{name}"))
    for b in W.benchmarks(cfg):
        src = (registry.benchmark(b).get("source") or {}).get(mode) or {}
        if src.get("kind") == "hub_dataset":
            out.append((src["repo"], "dataset", rev("benchmarks", b, src), f"data/benchmarks/{b}.jsonl"))
    if _config.get(cfg, "rlvr.data.source") == "hub" and "train_rlvr" in needed_rules(cfg):
        out.append((_config.get(cfg, "rlvr.data.repo"), "dataset", _config.get(cfg, "rlvr.data.revision"),
                    "data/rlvr/train.jsonl"))
    return out


def gated_repos(cfg: dict) -> list[tuple[str, str]]:
    marked = {registry.source(registry.model(n), cfg["mode"], n).get("repo") for n in fetched_models(cfg)
              if registry.model(n).get("gated")}
    return [(r, t) for r, t in hub_repos(cfg) if r in GATED_REPOS or r in marked]


# ------------------------------------------------------------------------------------------------------ the checks


@dataclass
class Ctx:
    cfg: dict
    probe: Probe
    outdir: Path
    resources_gpu: int | None
    slurm: bool
    sdm: str
    image_seen: dict = field(default_factory=dict)  # config key -> what the image probe reported inside it


def check_gpus(c: Ctx) -> list[Check]:
    gpus_by_rule = rule_gpus(c.cfg)
    need = {r: n for r, n in gpus_by_rule.items() if r in needed_rules(c.cfg)}
    unknown = sorted(r for r, n in need.items() if n is None)
    need = {r: n for r, n in need.items() if n}
    out = [Check(WARN, f"GPU count of rule(s) {', '.join(unknown)}", "could not be computed from this config")] \
        if unknown else []
    if not need:
        return out + [Check(OK, "GPUs", "no rule of this config asks for a GPU (CPU run)")]
    plan = ", ".join(f"{r} {n}" for r, n in sorted(need.items()))
    if c.slurm:
        return out + [Check(SKIP, "GPUs on this machine", f"--slurm: jobs get their GPUs from SLURM ({plan})")]
    gpus, how = c.probe.gpus()
    biggest = max(need.values())
    if not gpus:
        return out + [Check(FAIL, "GPUs", f"no GPU visible (checked: {how}); this config's rules need {plan} GPUs per job: "
                            "run on a GPU machine (or add --slurm on a login node), or use config/smoke.yaml on CPU")]
    mem = min(g["memory_mib"] for g in gpus) / 1024
    name = gpus[0]["name"]
    status = OK if len(gpus) >= biggest else FAIL
    fix = "" if status == OK else f": the largest rule needs {biggest}; lower the config's GPU counts or use a " \
                                  "bigger machine"
    out.append(Check(status, f"GPUs: {len(gpus)} x {name} ({mem:.0f} GiB) via {how}", f"rules need {plan}{fix}"))
    out += check_memory(c, need, mem)
    return out


def memory_plan(cfg: dict, need: dict[str, int]) -> list[tuple[str, float, float, str]]:
    """(rule, GiB per GPU needed, fraction of the GPU available for it, how) for the rules in `need`."""
    mode = cfg["mode"]
    g, t = cfg.get("grlo") or {}, _config.get(cfg, "rlvr.train") or {}
    primary = cfg["backbones"]["primary"]
    plans = []
    if "train_grlo" in need:
        n_gpu, n = need["train_grlo"], _params(primary, mode)
        rm = 0.0 if _config.get(cfg, "grlo.reward.param_offload") else 2 * _params(cfg["reward_model"], mode)
        gib = (2 * 16 * n / n_gpu + rm) / GIB
        plans.append(("train_grlo", gib, 1.0, f"actor+critic states 32 B/param over {n_gpu} GPUs"
                      + (" + RM bf16 weights" if rm else " (RM offloaded)")))
    if "train_rlvr" in need:
        n_gpu, n = need["train_rlvr"], _params(primary, mode)
        share = float(t.get("vllm_gpu_memory_utilization", 0.3)) if t.get("use_vllm") else 0.0
        plans.append(("train_rlvr", 16 * n / n_gpu / GIB, 1.0 - share,
                      f"ZeRO-3 states 16 B/param over {n_gpu} GPUs, beside vLLM's {share:g} share"))
    if "generate" in need:
        biggest = max(_params(m.partition("--")[0], mode) for m in W.eval_models(cfg))
        tp = int(_config.get(cfg, "generation.vllm.tensor_parallel_size") or 1)
        util = float(_config.get(cfg, "generation.vllm.gpu_memory_utilization") or 0.9)
        plans.append(("generate", 2 * biggest / tp / GIB, util,
                      f"largest model's bf16 weights / TP {tp} within gpu_memory_utilization {util:g}"))
    return plans


def check_memory(c: Ctx, need: dict[str, int], mem_gib: float) -> list[Check]:
    out = []
    for rule, gib, frac, how in memory_plan(c.cfg, need):
        avail = mem_gib * frac
        status = OK if gib <= 0.8 * avail else WARN if gib <= avail else FAIL
        fix = {OK: "", WARN: " (little room for activations and KV cache)",
               FAIL: ": more GPUs per job, a bigger GPU, or smaller batches"}[status]
        out.append(Check(status, f"GPU memory for {rule}: >= {gib:.1f} GiB of {avail:.0f} GiB per GPU",
                         how + " (activations not counted)" + fix))
    return out


def check_resources(c: Ctx) -> list[Check]:
    need = {r: n for r, n in rule_gpus(c.cfg).items() if r in needed_rules(c.cfg) and n}
    if not need:
        return []
    if c.resources_gpu is None:
        if c.slurm:
            return []
        biggest = max(need.values())
        return [Check(WARN, "snakemake --resources gpu=N not given to doctor",
                      f"pass the same --resources gpu=N here as to snakemake (N >= {biggest}): Snakemake lowers a "
                      "rule's gpu to the global limit silently")]
    short = {r: n for r, n in need.items() if n > c.resources_gpu}
    if short:
        return [Check(FAIL, f"--resources gpu={c.resources_gpu}",
                      ", ".join(f"{r} needs {n}" for r, n in sorted(short.items()))
                      + ": Snakemake would start it on fewer GPUs without a word; raise N or lower the rule's GPUs")]
    return [Check(OK, f"--resources gpu={c.resources_gpu}", "covers every rule (largest " + str(max(need.values()))
                  + ")")]


def check_trainer(c: Ctx) -> list[Check]:
    g = c.cfg.get("grlo") or {}
    n_rule = rule_gpus(c.cfg).get("train_grlo")
    if "train_grlo" not in needed_rules(c.cfg) or not n_rule or c.cfg["mode"] != "paper":
        return []
    procs = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1) or 1)
    if procs != n_rule:
        return [Check(FAIL, f"train_grlo: trainer starts {procs} processes (grlo.n_gpus_per_node x grlo.nnodes)",
                      f"the rule reserves {n_rule} GPUs: make them equal")]
    out = [Check(OK, f"train_grlo: {procs} trainer processes", "= the GPUs its rule reserves")]
    if g.get("engine") == "verl":  # the launch itself is checked by running it small, not by this list
        out.append(Check(OK, "train_grlo on verl: rehearse the launch before GPU hours",
                         f"grlo rehearse --config <these configs> --backbone {c.cfg['backbones']['primary']} "
                         "--output rehearsal (verl's main_ppo at tiny sizes on CPU: train, kill, resume, merge; "
                         "then the GRLO -> RLVR stage the same way when rlvr.engine is verl; docs/grlo_ppo.md)"))
    return out


def container_ref(cfg: dict) -> tuple[str, str | None]:
    return W.container_image(cfg), _config.get(cfg, "container.digest")


def check_container(c: Ctx) -> list[Check]:
    if c.sdm != "apptainer":
        if c.sdm == "conda":
            ok = c.probe.which("conda") or c.probe.which("mamba")
            out = [Check(OK if ok else FAIL, "--sdm conda", "conda on PATH" if ok else
                         "no conda/mamba on PATH: install Miniforge or use --sdm apptainer")]
            if (c.cfg.get("grlo") or {}).get("engine") == "verl" and "train_grlo" in needed_rules(c.cfg):
                out.append(Check(FAIL, "--sdm conda with grlo.engine verl", "the conda env (envs/grlo-gpu.yaml) has "
                                 "no verl, which needs its own torch/vLLM set: use --sdm apptainer (verl's own image, "
                                 "container.verl_image) or set grlo.engine: native"))
            return out
        return [Check(SKIP, "container", "--sdm none: rules run in this Python environment")]
    tool = c.probe.which("apptainer") or c.probe.which("singularity")
    out = [Check(OK if tool else FAIL, "apptainer", tool or "neither apptainer nor singularity on PATH: install "
                 "Apptainer, or run with --sdm conda (docs/gpu.md)")]
    ref, digest = container_ref(c.cfg)
    out += _check_image(c, ref, digest, "container.image")
    if uses_verl_image(c.cfg):
        verl = _config.get(c.cfg, "container.verl_image")
        if not verl:
            return out + [Check(FAIL, "verl image", "grlo.engine verl needs container.verl_image "
                                "(docker/verl.Dockerfile)")]
        out += _check_image(c, verl, None, "container.verl_image")
    return out


def uses_verl_image(cfg: dict) -> bool:
    return (cfg.get("grlo") or {}).get("engine") == "verl" and "train_grlo" in needed_rules(cfg)


def _check_image(c: Ctx, ref: str, digest: str | None, key: str) -> list[Check]:
    out = []
    if "://" not in ref or ref.startswith("file://"):
        p = Path(ref.removeprefix("file://")).expanduser()
        out.append(Check(OK if p.exists() else FAIL, f"image {p}", "present" if p.exists() else
                         f"missing: build it (docs/gpu.md) or point {key} at a registry"))
        return out
    if not digest and c.cfg["mode"] == "paper" and "@sha256:" not in ref:
        out.append(Check(WARN, f"image {ref}", f"not pinned by a digest ({key}): the tag can move; pin the digest "
                         "the release workflow records (docs/gpu.md)"))
    m = re.match(r"^(?:docker|oras)://([^/]+)/", ref)
    host = m.group(1) if m and "." in m.group(1) else "registry-1.docker.io"
    up = c.probe.reachable(f"https://{host}/v2/")
    sif = IMAGES[key]["sif"]
    out.append(Check(OK if up else FAIL, f"image registry {host}", "reachable: the image is pulled at the first job"
                     if up else f"unreachable: build {sif} here (`make sif`, no Docker needed) or pull it elsewhere "
                     f"(`apptainer pull {sif} {ref}`), and set {key} to the .sif path"))
    return out


# ------------------------------------------------------------------------- images started, driver, job credentials
# Each image, its SIF name (`make sif`), the CUDA its torch wheels are built for (the Dockerfile's CUDA base; tests
# check both agree) and what the probe imports inside it. Minimum drivers: NVIDIA's CUDA toolkit release notes
# (table 3, "CUDA Toolkit and Corresponding Driver Versions"): CUDA 13.0 needs the R580 branch (>= 580.65.06),
# CUDA 12.8 the R570 branch (12.8 Update 1: >= 570.124.06). Older drivers: the CUDA forward-compatibility package
# (data-center GPUs only; docs/gpu.md).
IMAGES = {
    "container.image": {"sif": "grlo.sif", "def": "containers/grlo.def", "cuda": "13.0", "driver": "580.65.06",
                        "imports": ["torch", "vllm", "trl", "transformers", "deepspeed", "grlo"]},
    "container.verl_image": {"sif": "grlo-verl.sif", "def": "containers/grlo-verl.def", "cuda": "12.8",
                             "driver": "570.124.06", "imports": ["torch", "vllm", "verl", "flash_attn", "ray", "grlo"]},
}
# Run inside the image (`apptainer exec --nv`): imports the stack, initialises CUDA, and reports the credentials the
# job sees. One JSON line on stdout.
IMAGE_PROBE = """
import importlib, json, os
out = {"imports": {}, "errors": {}}
for name in %s:
    try:
        m = importlib.import_module(name)
        out["imports"][name] = getattr(m, "__version__", "?")
    except Exception as e:
        out["errors"][name] = type(e).__name__ + ": " + str(e)[:200]
try:
    import torch
    out["cuda"] = torch.version.cuda
    out["gpus"] = torch.cuda.device_count()
    if out["gpus"]:
        torch.zeros(1, device="cuda").add_(1)
        out["gpu0"] = torch.cuda.get_device_name(0)
except Exception as e:
    out["errors"]["cuda init"] = type(e).__name__ + ": " + str(e)[:200]
try:
    from huggingface_hub import get_token
    out["hf_token"] = bool(get_token())
except Exception as e:
    out["hf_token"] = None
out["openai_key"] = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEYS"))
out["wandb_key"] = bool(os.environ.get("WANDB_API_KEY"))
out["hf_home"] = os.environ.get("HF_HOME")
print(json.dumps(out))
"""


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def cache_dir(cfg: dict) -> Path:
    return Path(os.path.expanduser(_config.get(cfg, "container.cache") or "~/.cache/grlo"))


def images_used(cfg: dict) -> list[tuple[str, str]]:
    """(config key, image reference) of every image this run starts."""
    out = [("container.image", W.container_image(cfg))]
    if uses_verl_image(cfg) and _config.get(cfg, "container.verl_image"):
        out.append(("container.verl_image", _config.get(cfg, "container.verl_image")))
    return out


def image_command(tool: str, ref: str, key: str, workdir: Path, cache: Path) -> list[str]:
    """The probe as a job runs it: Snakemake's `--home <workdir>`, the workflow's --nv and /cache bind."""
    return [tool, "exec", "--home", str(workdir), "--nv", "--bind", f"{cache}:/cache", ref, "python", "-c",
            IMAGE_PROBE % repr(IMAGES[key]["imports"])]


def check_driver(c: Ctx) -> list[Check]:
    """The host driver against the CUDA of each image the run starts (a SLURM login node may have none)."""
    keys = [k for k, _ in images_used(c.cfg)] if c.sdm == "apptainer" else ["container.image"]
    driver = c.probe.driver_version()
    if driver is None:
        if c.slurm:
            return [Check(SKIP, "NVIDIA driver", "no nvidia-smi on this node: run `grlo doctor` in a GPU job "
                          "(srun --gpus=1 ...) to compare the compute nodes' driver with the images' CUDA")]
        return []  # no GPU: check_gpus says so
    out = []
    for key in keys:
        im = IMAGES[key]
        ok = _version(driver) >= _version(im["driver"])
        out.append(Check(OK if ok else FAIL, f"driver {driver} vs CUDA {im['cuda']} of {key}", f">= {im['driver']}"
                         if ok else f"CUDA {im['cuda']} needs driver >= {im['driver']} (R{im['driver'].split('.')[0]}"
                         "): update the driver, or use the CUDA forward-compatibility package on a data-center GPU "
                         "(docs/gpu.md, \"Drivers\")"))
    return out


def check_images_start(c: Ctx) -> list[Check]:
    """Start each image as a job would (apptainer exec --nv) and import its stack, CUDA initialised."""
    if c.sdm != "apptainer":
        return []
    tool = c.probe.which("apptainer") or c.probe.which("singularity")
    if not tool:
        return []  # check_container says so
    out = []
    for key, ref in images_used(c.cfg):
        if "://" not in ref and not Path(ref).expanduser().exists():
            continue  # missing local SIF: check_container says so
        rc, so, se = c.probe.run(image_command(tool, ref, key, c.outdir, cache_dir(c.cfg)))
        got = None
        for line in reversed(so.strip().splitlines()):
            try:
                got = json.loads(line)
                break
            except ValueError:
                continue
        if rc != 0 or not isinstance(got, dict):
            tail = (se.strip().splitlines() or [f"exit status {rc}"])[-1][:300]
            out.append(Check(FAIL, f"{key} {ref}: did not start", f"{tail} (apptainer exec --nv; build it with "
                             f"`make sif` -> {IMAGES[key]['sif']})"))
            continue
        c.image_seen[key] = got
        errs = got.get("errors") or {}
        versions = ", ".join(f"{k} {v}" for k, v in (got.get("imports") or {}).items())
        gpus = int(got.get("gpus") or 0)
        if errs:
            first = next(iter(errs.items()))
            out.append(Check(FAIL, f"{key}: {first[0]} failed inside the image", f"{first[1]} (imported: {versions})"))
        elif not gpus:
            out.append(Check(WARN if c.slurm else FAIL, f"{key}: started, no GPU inside", "apptainer --nv found no "
                             "GPU" + (" (login node: rerun in a GPU job)" if c.slurm else ": check the driver and "
                                      "--nv")))
        else:
            out.append(Check(OK, f"{key} started with --nv", f"CUDA {got.get('cuda')} initialised on {gpus} GPU(s) "
                             f"({got.get('gpu0', '?')}); {versions}"))
    return out


def job_hf_token(c: Ctx) -> tuple[bool, str]:
    """(a job sees a Hugging Face token, where from). Under Apptainer a job has HOME = its working directory and
    HF_HOME=/cache/huggingface: a host `huggingface-cli login` file is hidden; HF_TOKEN (passed through) or a token
    file in the /cache bind are seen."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if c.probe.env(var):
            return True, f"{var} (exported; Apptainer passes it to the job)"
    if c.sdm == "apptainer":
        f = cache_dir(c.cfg) / "huggingface" / "token"
        return (True, f"{f} (HF_HOME=/cache/huggingface inside the job)") if c.probe.file_exists(f) else (False, "")
    f = c.probe.hf_token_file()
    return (True, f"{f} (huggingface-cli login)") if f else (False, "")


def check_job_credentials(c: Ctx) -> list[Check]:
    """Every credential a job needs, as the job sees it (the image probe's answer when the image started)."""
    out = []
    seen = c.image_seen.get("container.image") or {}
    if gated_repos(c.cfg) or any(registry.model(n).get("gated") for n in fetched_models(c.cfg)):
        ok, where = job_hf_token(c)
        if seen.get("hf_token") is not None:
            ok, where = bool(seen["hf_token"]), where or "seen inside the image"
        host = c.probe.hf_token_file()
        if ok:
            out.append(Check(OK, "Hugging Face token reaches the jobs", where))
        elif host and c.sdm == "apptainer":
            dest = cache_dir(c.cfg) / "huggingface" / "token"
            out.append(Check(FAIL, "Hugging Face token does not reach the jobs", f"your login token {host} is "
                             "hidden inside the container (--home <workdir>, HF_HOME=/cache/huggingface): "
                             f"`export HF_TOKEN=$(cat {host})` or `install -m 600 -D {host} {dest}`"))
    if _uses_wandb(c.cfg) and c.sdm == "apptainer" and not c.probe.env("WANDB_API_KEY"):
        out.append(Check(FAIL, "W&B logging without WANDB_API_KEY", "a `wandb login` in ~/.netrc is hidden inside "
                         "the container (--home <workdir>): export WANDB_API_KEY"))
    return out


def _uses_wandb(cfg: dict) -> bool:
    return "wandb" in (_config.get(cfg, "grlo.logger") or []) or "wandb" in (_config.get(cfg, "rlvr.train.report_to")
                                                                            or [])


SLURM_PROFILE = _config.REPO_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"


def slurm_runtimes(profile: Path) -> dict[str, int]:
    """{rule: runtime minutes} of the SLURM profile (set-resources, else default-resources)."""
    data = yaml.safe_load(read_input(profile, "SLURM profile")) or {}
    default = (data.get("default-resources") or {}).get("runtime")
    rules = data.get("set-resources") or {}
    return {r: int(v.get("runtime", default)) for r, v in rules.items() if isinstance(v, dict)} | \
        ({"*": int(default)} if default is not None else {})


def check_slurm_runtimes(c: Ctx) -> list[Check]:
    """--slurm: each GPU rule's time limit in the profile against the forecast's longest job (grlo forecast)."""
    if not c.slurm:
        return []
    have = slurm_runtimes(SLURM_PROFILE)
    out = []
    for rule, need in sorted(job_runtimes(c.cfg).items()):
        if rule not in needed_rules(c.cfg):
            continue
        got = have.get(rule, have.get("*"))
        line = f"SLURM runtime of {rule}: {got} min"
        why = (f"its longest job, {need['job']}, is forecast at up to {need['hours_high']:.1f} h on its GPUs; "
               f"x {SLURM_MARGIN} = {need['minutes']} min")
        if got is None or got < need["minutes"]:
            out.append(Check(FAIL, line, f"{why}: raise set-resources.{rule}.runtime in "
                             f"{SLURM_PROFILE.relative_to(_config.REPO_ROOT)}"))
        else:
            out.append(Check(OK, line, why))
    return out


def check_custom_models(c: Ctx) -> list[Check]:
    """evaluation.custom_models: a local directory holds a model; a hub model is reachable at its pinned commit."""
    out = []
    for name, e in custom.entries(c.cfg).items():
        src = e["source"]["paper"]
        if src["kind"] == "local":
            given = Path(os.path.expanduser(src["path"]))
            p = given if given.is_absolute() else c.outdir / given
            made = not given.is_absolute() and given.parts[:1] == ("models",) and len(given.parts) == 2 \
                and given.parts[1] in fetched_models(c.cfg)  # a model this run fetches itself
            ok = (p / "config.json").is_file()
            out.append(Check(OK if ok or made else FAIL, f"custom model {name}", f"{p}" + (
                "" if ok else " (fetched by this run)" if made else ": no config.json there (a relative path is "
                "inside the outdir; give the model directory)")))
        else:
            offline = c.probe.env("HF_HUB_OFFLINE") not in (None, "0", "false")
            if offline or not c.probe.reachable(HUB_URL):
                ok = c.probe.hf_cached(src["repo"], "model", src["revision"])
                out.append(Check(OK if ok else FAIL, f"custom model {name}", f"{src['repo']}@{src['revision'][:12]} "
                                 + ("in the cache" if ok else "neither reachable nor cached")))
            else:
                out.append(Check(OK, f"custom model {name}", f"{src['repo']}@{src['revision'][:12]} on the hub"))
    return out


def check_disk(c: Ctx) -> list[Check]:
    total, _ = storage_estimate(c.cfg)
    src = "the run's storage estimate (grlo forecast prints its parts)"
    if c.sdm == "apptainer":  # inside the image every cache (HF_HOME included) lives under the /cache bind
        bound = Path(os.path.expanduser(_config.get(c.cfg, "container.cache") or "~/.cache/grlo"))
        dirs = {"outdir": c.outdir, "image caches (container.cache)": bound}
    else:
        hf_home = Path(c.probe.env("HF_HOME") or Path.home() / ".cache" / "huggingface")
        dirs = {"outdir": c.outdir, "model cache (GRLO_CACHE)": cache_root(), "Hugging Face cache (HF_HOME)": hf_home}
    bad = [Check(FAIL, f"{what} {d}", "not writable: fix its permissions or choose another directory")
           for what, d in dirs.items() if not c.probe.writable(d)]
    if bad:
        return bad
    out = [Check(OK, "directories writable", ", ".join(str(d) for d in dirs.values()))]
    by_dev: dict[int, tuple[int, list[str]]] = {}
    for what, d in dirs.items():
        free, dev = c.probe.disk_free(d)
        by_dev.setdefault(dev, (free, []))[1].append(what)
    # models/ and checkpoints/ live under outdir (the whole estimate); downloads pass through the caches (the
    # weights again) when those lie on another file system
    weights = S.weights_bytes(c.cfg)
    for free, whats in by_dev.values():
        need = total if "outdir" in whats else weights
        status = OK if free >= 1.2 * need else WARN if free >= need else FAIL
        out.append(Check(status, f"disk for {', '.join(whats)}: {free / GIB:.0f} GiB free, ~{need / GIB:.0f} GiB "
                         "needed", src + ("" if status == OK else ": free space or set outdir elsewhere")))
    return out


def check_hub(c: Ctx) -> list[Check]:
    repos = hub_repos(c.cfg)
    if not repos:
        return [Check(OK, "hub", "this config downloads nothing from the hub")]
    offline = c.probe.env("HF_HUB_OFFLINE") not in (None, "0", "false")
    if not offline and c.probe.reachable("https://huggingface.co/api/models/Qwen/Qwen3-4B-Base"):
        return [Check(OK, "huggingface.co reachable", f"{len(repos)} repos to fetch")]
    # offline, a source is there when its output exists already (models/<name>, data/benchmarks/<b>.jsonl) or the
    # Hugging Face cache holds its snapshot (at the pinned revision)
    missing = list(dict.fromkeys(r for r, t, rev, done in hub_sources(c.cfg)
                                 if not (c.outdir / done).exists() and not c.probe.hf_cached(r, t, rev)))
    why = "HF_HUB_OFFLINE set" if offline else "unreachable"
    if missing:
        return [Check(FAIL, f"hub {why} and {len(missing)} repo(s) neither fetched nor cached", ", ".join(missing[:6])
                      + ("..." if len(missing) > 6 else "") + ": go online or fill the cache first")]
    return [Check(OK, f"hub {why}", f"all {len(repos)} repos fetched or in the cache")]


def check_pins(c: Ctx) -> list[Check]:
    """Every hub/url source pinned by the registry or the lock file (grlo/lock.py); frozen: an unpinned one stops."""
    if c.cfg["mode"] != "paper":
        return []
    missing = lock_sources.missing_pins(c.cfg)
    if not missing:
        return [Check(OK, "pins", "every source is pinned (registry or lock file)")]
    first = ", ".join(missing[:3]) + ("..." if len(missing) > 3 else "")
    if lock.frozen(c.cfg):
        return [Check(FAIL, f"pins: {len(missing)} source(s) unpinned with lock.frozen", f"{first}: run `grlo lock "
                      "--config ...` with lock.frozen: false")]
    return [Check(WARN, f"pins: {len(missing)} source(s) not pinned yet", f"{first}: recorded in "
                  f"{lock.lock_path(c.cfg)} at first fetch, or now with `grlo lock --config ...`")]


def check_gated(c: Ctx) -> list[Check]:
    gated = gated_repos(c.cfg)
    if not gated:
        return []
    names = ", ".join(r for r, _ in gated)
    tok = c.probe.hf_token()
    if not tok:
        return [Check(FAIL, f"gated repos {names}", "no Hugging Face token: accept each repo's terms on the hub, "
                      "then `huggingface-cli login` or set HF_TOKEN")]
    offline = c.probe.env("HF_HUB_OFFLINE") not in (None, "0", "false")
    if offline or not c.probe.reachable("https://huggingface.co/api/models/Qwen/Qwen3-4B-Base"):
        return [Check(WARN, f"gated repos {names}", "token present; access cannot be checked offline")]
    denied = [(r, why) for r, t in gated if (why := c.probe.hf_access(r, t, tok))]
    if denied:
        return [Check(FAIL, "gated repo access", ", ".join(f"{r} ({w})" for r, w in denied)
                      + ": accept the terms on the repo's hub page with this token's account")]
    return [Check(OK, f"gated repos {names}", "token has access")]


def check_judge(c: Ctx) -> list[Check]:
    benches = W.benchmarks(c.cfg)
    if not any(registry.benchmark(b).get("scorer") == "alpacaeval" for b in benches):
        return []
    j = _config.get(c.cfg, "evaluation.judge") or {}
    if j.get("kind") == "reward_model":
        return [Check(OK, "AlpacaEval judge", f"local judge model {j.get('model')} (fetched by the workflow)")]
    if j.get("kind") == "none":
        return [Check(WARN, "AlpacaEval judge", "evaluation.judge.kind is none: its cells read 'not run (no judge)'")]
    if j.get("serve"):
        return [Check(OK, "AlpacaEval judge", f"{j['serve'].get('model_path')} served by the scoring job (vllm serve)")]
    if j.get("base_url"):
        up = c.probe.reachable(str(j["base_url"]).rstrip("/") + "/models")
        return [Check(OK if up else WARN, f"AlpacaEval judge at {j['base_url']}", "answers" if up else
                      "not answering now: start the server before the score jobs run")]
    if c.probe.env("OPENAI_API_KEY") or c.probe.env("OPENAI_API_KEYS"):
        return [Check(OK, "AlpacaEval judge", f"OPENAI_API_KEY set ({j.get('model')})")]
    names = ", ".join(b for b in benches if registry.benchmark(b).get("scorer") == "alpacaeval")
    return [Check(FAIL, "AlpacaEval judge", f"no OPENAI_API_KEY and no evaluation.judge.base_url: scoring {names} "
                  "would fail after generation; export the key, point base_url at a local OpenAI-compatible server, "
                  "or drop it from evaluation.benchmarks")]


def check_prompts(c: Ctx) -> list[Check]:
    if "train_grlo" not in needed_rules(c.cfg):
        return []
    n, src = prompt_count(c.cfg, c.outdir)
    g = c.cfg.get("grlo") or {}
    if n is None:
        return [Check(WARN, "prompt count", f"{src}: cannot check grlo.train_batch_size yet")]
    try:
        from grlo.train.batching import resolve_batch_sizes  # heavy: torch (the trainer's own rules)
    except ImportError:  # the host env (envs/snakemake.yaml) has no torch: the first rule only
        bs = int(g.get("train_batch_size", 1))
        status = OK if n >= bs else WARN if g.get("adapt_batch_size") else FAIL
        return [Check(status, f"{n} prompts vs grlo.train_batch_size {bs}", f"{src}; mini-batch divisibility is "
                      "checked where torch is installed (the GPU env or the image)")]
    procs = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1) or 1)
    quiet = logging.getLogger("grlo.train.ppo")  # resolve_batch_sizes logs an adaptation: reported below instead
    level, quiet.level = quiet.level, logging.ERROR
    try:
        if g.get("engine") == "verl":  # the engine's own rule: verl's workers also need whole micro-batches per GPU
            got = verl_batch(g, n, source="config")
        else:
            got = resolve_batch_sizes(g, n, procs, source="config")
    except GrloError as e:
        return [Check(FAIL, f"{n} prompts ({src}) vs grlo.train_batch_size {g.get('train_batch_size')}", str(e))]
    finally:
        quiet.level = level
    note = " (before the length filter)"
    if got["adapted"]:
        return [Check(WARN, f"{n} prompts{note} < train_batch_size", f"adapt_batch_size shrinks it to "
                      f"{got['train_batch_size']}: {src}")]
    return [Check(OK, f"{n} prompts{note}", f">= train_batch_size {got['train_batch_size']}: {src}")]


def check_sandbox(c: Ctx) -> list[Check]:
    code = [b for b in W.benchmarks(c.cfg) if registry.benchmark(b).get("scorer") in ("evalplus", "lcb", "livecodebench")]
    if not code:
        return []
    mode = c.probe.isolation()
    if mode == "process_group":
        return [Check(WARN, "code sandbox: process group + rlimits only", "no bubblewrap or no user namespaces "
                      "here: code scoring stops unless the config sets sandbox.allow_weaker: true (model-written "
                      "code can then read files and use the network); enable unprivileged user "
                      "namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)")]
    return [Check(OK, f"code sandbox: {mode}", "minimal read-only root, no network, own PID namespace")]


CHECKS: list[Callable[[Ctx], list[Check]]] = [check_gpus, check_resources, check_trainer, check_container,
                                              check_driver, check_images_start, check_disk, check_hub, check_pins,
                                              check_gated, check_job_credentials, check_slurm_runtimes,
                                              check_custom_models, check_judge,
                                              check_prompts, check_sandbox]


def doctor(cfg: dict, probe: Probe | None = None, *, outdir: str | os.PathLike | None = None,
           resources_gpu: int | None = None, slurm: bool = False, sdm: str | None = None) -> list[Check]:
    probe = probe or Probe()
    sdm = sdm or ("apptainer" if cfg["mode"] == "paper" else "none")
    out = Path(outdir) if outdir is not None else Path.cwd() / (W.prefix(cfg) or ".")
    ctx = Ctx(cfg, probe, out, resources_gpu, slurm, sdm)
    results: list[Check] = []
    for fn in CHECKS:
        try:
            results += fn(ctx)
        except GrloError as e:
            results.append(Check(FAIL, fn.__name__.removeprefix("check_"), str(e)))
    return results


def parse_resources(items: list[str] | None) -> int | None:
    """`--resources gpu=4 mem_mb=...` (as given to snakemake) -> the gpu count."""
    for item in items or []:
        key, _, val = item.partition("=")
        if key.strip() == "gpu":
            try:
                return int(val)
            except ValueError:
                raise GrloError(f"{item!r} is not gpu=<integer>", field="--resources") from None
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config file(s), overlays last (as --configfile)")
    p.add_argument("--resources", nargs="*", metavar="NAME=N", help="the --resources you give snakemake (gpu=N)")
    p.add_argument("--slurm", action="store_true", help="submitting to SLURM: no local GPUs needed")
    p.add_argument("--sdm", choices=["apptainer", "conda", "none"],
                   help="software deployment (default: apptainer in paper mode, none in smoke mode)")
    p.add_argument("--directory", help="snakemake --directory (default: here); outputs go under it + outdir")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    base = Path(args.directory) if args.directory else Path.cwd()
    checks = doctor(cfg, outdir=base / (W.prefix(cfg) or "."), resources_gpu=parse_resources(args.resources),
                    slurm=args.slurm, sdm=args.sdm)
    print(f"grlo doctor: {cfg['mode']} mode, {', '.join(args.config)}")
    for ch in checks:
        print(ch.line())
    failed = [ch for ch in checks if ch.status == FAIL]
    print(f"{len(failed)} problem(s) would stop the run" if failed else "ready: nothing found that would stop the run")
    sys.stdout.flush()
    return 1 if failed else 0

