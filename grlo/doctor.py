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
  container   apptainer/singularity on PATH and the image (local .sif present, or the registry reachable);
              the digest pinned (config `container.digest`).
  disk        output and cache directories (container.cache with Apptainer; GRLO_CACHE and HF_HOME otherwise)
              writable, free space against the storage estimate (storage_estimate below: parameter counts of grlo/registry/models.yaml).
  hub         huggingface.co reachable, or (offline) every hub repo the run needs already in the cache (the snapshot of
              the pinned revision where the registry or the lock file pins one).
  pins        every source pinned by the registry or the lock file (grlo/lock.py); unpinned with lock.frozen: fail.
  gated       a Hugging Face token when the run needs a gated repo (Llama-3.2, GPQA); access itself is checked only
              when the hub is reachable (offline it cannot be known).
  judge       AlpacaEval 2's judge: OPENAI_API_KEY, a local OpenAI-compatible base_url, or a local judge model.
  prompts     the prompt count against grlo.train_batch_size (the trainer's own batch-size rules).
  sandbox     the code sandbox's isolation (user namespaces through unshare) for model-written code.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grlo import config as _config
from grlo import registry
from grlo import workflow as W
from grlo.errors import GrloError

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
MARK = {OK: "[ ok ]", WARN: "[warn]", FAIL: "[FAIL]", SKIP: "[skip]"}
GIB = 1 << 30
# Hub repos that need accepted terms and a token. The registry may also mark an entry `gated: true`.
GATED_REPOS = {"meta-llama/Llama-3.2-3B", "Idavidrein/gpqa"}
SMOKE_PARAMS_B = 0.135  # SmolLM2-135M-Instruct stands in for every smoke model (registry smoke sources)
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
        from grlo.accounting import probe_devices

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
        import urllib.error
        import urllib.request

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
            from huggingface_hub import get_token

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
            from huggingface_hub import auth_check

            auth_check(repo, repo_type=repo_type, token=token)
            return None
        except Exception as e:  # GatedRepoError, RepositoryNotFoundError, network: all mean "not readable now"
            return type(e).__name__

    def isolation(self) -> str:
        from grlo.eval.sandbox import isolation_mode

        return isolation_mode()


# ------------------------------------------------------------------------------------------------ what the run needs


def rule_gpus(cfg: dict) -> dict[str, int | None]:
    """{rule: GPUs per job} as the workflow reserves them (grlo.workflow.rule_gpus, which the rules' `gpu=` read);
    None when this config cannot say (reported, never guessed)."""
    try:
        return dict(W.rule_gpus(cfg))
    except (GrloError, KeyError, TypeError, ValueError):
        return {r: None for r in ("generate", "lmeval_fewshot", "score", "train_grlo", "train_rlvr")}


def needed_rules(cfg: dict) -> set[str]:
    """GPU rules this config's DAG runs (training rules only when a stage is trained)."""
    need = {"generate", "score", "lmeval_fewshot"}
    for m in W.eval_models(cfg):
        r = W.resolve_eval_model(cfg, m)
        if r["stage"] == "grlo":
            need.add("train_grlo")
        elif r["stage"]:
            need.add("train_rlvr")
            if r["stage"] == "grlo-rlvr":
                need.add("train_grlo")
    return need


def _params(name: str, mode: str) -> float:
    entry = registry.model(name)
    src = (entry.get("source") or {}).get(mode) or {}
    if mode == "smoke":
        return 0.0 if src.get("kind") == "tiny_reward" else SMOKE_PARAMS_B * 1e9
    return float(entry.get("params_b") or 0.0) * 1e9


def fetched_models(cfg: dict) -> list[str]:
    """Registry models the run downloads (each once)."""
    names = [cfg["backbones"]["primary"], *cfg["backbones"].get("extra", []), cfg["reward_model"]]
    names += [m.partition("--")[0] for m in W.eval_models(cfg, "released")]
    if _config.get(cfg, "rlvr.mode") == "checkpoint" and f"{cfg['backbones']['primary']}--rlvr" in W.eval_models(cfg):
        names.append(_config.get(cfg, "rlvr.checkpoint.model"))
    if _config.get(cfg, "rlvr.reward.verifier") == "general-verifier" and "train_rlvr" in needed_rules(cfg):
        names.append("general-verifier")
    judge = _config.get(cfg, "evaluation.judge") or {}
    if judge.get("kind") == "reward_model" and judge.get("model"):
        names.append(judge["model"])
    return list(dict.fromkeys(n for n in names if n))


def storage_estimate(cfg: dict, n_prompts: int | None = None) -> tuple[float, list[str]]:
    """(bytes, the parts) written by a run: downloaded weights (bf16), final checkpoints (fp32, conservative) and
    resume checkpoints (fp32 weights + grads-free Adam state: 12 B/param, actor and critic for GRLO).
    Generations, scores and logs are small beside these and not counted. `n_prompts` (when known) gives the GRLO
    step count, and so whether a resume checkpoint is ever written."""
    mode = cfg["mode"]
    parts, total = [], 0.0
    for name in fetched_models(cfg):
        b = 2 * _params(name, mode)
        total += b
        parts.append(f"{name} weights {b / GIB:.1f} GiB")
    g = cfg.get("grlo") or {}
    t = _config.get(cfg, "rlvr.train") or {}
    for m in W.eval_models(cfg):
        r = W.resolve_eval_model(cfg, m)
        if not r["stage"]:
            continue
        n = _params(r["source"], mode)
        final = 4 * n
        if r["stage"] == "grlo":
            every, steps = int(g.get("save_freq", -1) or -1), g.get("total_training_steps")
            if steps is None and n_prompts:  # verl: full batches per epoch x epochs (a short set adapts to 1)
                steps = max(1, n_prompts // int(g.get("train_batch_size", 1))) * int(g.get("total_epochs", 1))
            saves = every > 0 and (steps is None or int(steps) >= every)
            resume = int(g.get("keep_last", 1)) * 2 * 12 * n if saves else 0.0
        else:
            every = int(t.get("save_steps") or 0)
            steps = _config.get(cfg, f"rlvr.stages.{r['stage']}.max_steps") or t.get("max_steps")
            saves = every > 0 and (steps is None or int(steps) >= every)
            resume = int(t.get("save_total_limit") or 1) * 12 * n if saves else 0.0
        total += final + resume
        parts.append(f"{r['source']}/{r['stage']} final {final / GIB:.1f} GiB + resume {resume / GIB:.1f} GiB")
    return total, parts


def _forecast_storage(cfg: dict) -> tuple[float, list[str], str] | None:
    """The forecast's own storage estimate when grlo/report/forecast.py provides one."""
    from grlo.report import forecast

    fn = getattr(forecast, "storage_estimate", None)
    if fn is None:
        return None
    got = fn(cfg)
    if isinstance(got, tuple):
        return float(got[0]), list(got[1]), "grlo forecast"
    return float(got), [], "grlo forecast"


def prompt_count(cfg: dict, outdir: Path) -> tuple[int | None, str]:
    from grlo.data import resolve_source_path

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
    from grlo import lock

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
                         "docs/grlo_ppo.md)"))
    return out


def container_ref(cfg: dict) -> tuple[str, str | None]:
    return W.container_image(cfg), _config.get(cfg, "container.digest")


def check_container(c: Ctx) -> list[Check]:
    if c.sdm != "apptainer":
        if c.sdm == "conda":
            ok = c.probe.which("conda") or c.probe.which("mamba")
            return [Check(OK if ok else FAIL, "--sdm conda", "conda on PATH" if ok else
                          "no conda/mamba on PATH: install Miniforge or use --sdm apptainer")]
        return [Check(SKIP, "container", "--sdm none: rules run in this Python environment")]
    tool = c.probe.which("apptainer") or c.probe.which("singularity")
    out = [Check(OK if tool else FAIL, "apptainer", tool or "neither apptainer nor singularity on PATH: install "
                 "Apptainer, or run with --sdm conda (docs/gpu.md)")]
    ref, digest = container_ref(c.cfg)
    out += _check_image(c, ref, digest, "container.image")
    if (c.cfg.get("grlo") or {}).get("engine") == "verl" and "train_grlo" in needed_rules(c.cfg):
        verl = _config.get(c.cfg, "container.verl_image")
        if not verl:
            return out + [Check(FAIL, "verl image", "grlo.engine verl needs container.verl_image "
                                "(docker/verl.Dockerfile)")]
        out += _check_image(c, verl, None, "container.verl_image")
    return out


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
    out.append(Check(OK if up else FAIL, f"image registry {host}", "reachable: the image is pulled at the first job"
                     if up else "unreachable: pull the image elsewhere (`apptainer pull grlo.sif "
                     f"{ref}`) and set {key} to the .sif path"))
    return out


def check_disk(c: Ctx) -> list[Check]:
    from grlo.models.fetch import cache_root

    got = _forecast_storage(c.cfg)
    if got is None:
        total, _ = storage_estimate(c.cfg, prompt_count(c.cfg, c.outdir)[0])
        src = "estimated from registry parameter counts (grlo forecast has no storage estimate)"
    else:
        total, _, src = got
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
    weights = sum(2 * _params(n, c.cfg["mode"]) for n in fetched_models(c.cfg))
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
    from grlo import lock

    missing = lock.missing_pins(c.cfg)
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
        from grlo.train.batching import resolve_batch_sizes  # the trainer's own rules (imports torch)
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
            from grlo.train.train_grlo import verl_batch

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
        return [Check(WARN, "code sandbox: process group + rlimits only", "no user namespaces here (unshare -U "
                      "fails): code scoring stops unless the config sets sandbox.allow_weaker: true (model-written "
                      "code can then read files and use the network); enable unprivileged user "
                      "namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)")]
    return [Check(OK, f"code sandbox: {mode}", "no network, read-only file system, own PID namespace")]


CHECKS: list[Callable[[Ctx], list[Check]]] = [check_gpus, check_resources, check_trainer, check_container, check_disk,
                                              check_hub, check_pins, check_gated, check_judge, check_prompts,
                                              check_sandbox]


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
    from grlo.report.common import load_config

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

