"""`grlo forecast`: GPU-hours per stage of the configured run, before it starts, with a low-high range.

    GPU-hours = sum over kinds of work (FLOPs_kind / (peak_bf16 x efficiency_kind)) / 3600

FLOPs count model parameters only (attention ignored): 2 N per token for a forward pass (generation included),
6 N for forward+backward, +2 N when gradient checkpointing recomputes the forward (8 N in all).
Per stage (B = prompts per step x samples per prompt, T = mean prompt + mean response tokens):
  grlo       decode 2 N B T; forward (old log-probs, critic values, reward model) 2 (N + N_critic + N_rm) B T;
             train (actor + critic) 8 (N + N_critic) B T  per step, x steps;
             steps = total_epochs x floor(prompts / batch) (verl drops the last partial batch), from the run's own
             plan (grlo_plan: the prompt file it will use, the batch after grlo.adapt_batch_size; the same numbers as
             `grlo train-grlo --dry-run`): the public 1K file gives 15 x floor(1000 / 512) = 15 steps, the
             paper's 5K set 15 x floor(5000 / 1024) = 60; verl engine only: + in-loop validation, greedy decode of the
             validation set at step 0 (val_before_train), every test_freq steps and at the last step
  rlvr,      decode 2 N B T; forward (reference model when beta > 0, verifier) 2 (N_ref + N_verifier) B T;
  grlo-rlvr  train 8 N B T per step, x steps (a step = one generation batch: rlvr max_steps / (batch /
             mini_batch_prompts)); priced on both engines, verl (packed) and TRL (padded); `rlvr.engine` counts
  eval       decode 2 N x problems x k x T per (model, benchmark)
Efficiencies depend on the engine (`grlo.engine`, `--engine`): verl packs sequences (use_remove_padding), the
native engine and TRL pad (ENGINE_WORK; grlo/report/throughput.yaml gives each with its source and a low-high
range). Mean response length is unknown before a run: `report.forecast.response_fraction` x the max response
tokens. Every number used is printed and written beside the result.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path

import yaml

from grlo import registry
from grlo import config as _config
from grlo.data import resolve_source_path
from grlo.errors import GrloError
from grlo.generation import eval_settings  # the settings `grlo generate` will use (model mode included)
from grlo.io import read_input, read_json
from grlo.registry import benchmark as _bench
from grlo.report import common
from grlo.report.storage import GIB, storage_estimate
from grlo.run_plan import rule_gpus
from grlo.train.train_grlo import verl_batch

THROUGHPUT_PATH = Path(__file__).resolve().parent / "throughput.yaml"
KINDS = ("decode", "forward", "train")
ENGINES = ("verl", "native")
# which measured kind of work each engine's decode / forward / train is (throughput.yaml `efficiency` keys);
# "trl" is the RLVR trainer (TRL pads its batches, like the native engine)
ENGINE_WORK = {
    "verl": {"decode": "decode", "forward": "forward_packed", "train": "train_packed"},
    "native": {"decode": "decode", "forward": "forward_padded", "train": "train_padded"},
    "trl": {"decode": "decode", "forward": "forward_padded", "train": "train_padded"},
}
DEFAULT_PROMPTS = 5000  # the paper's GRLO training set (paper.md section 2); the public release has 1,000 of them
# Defaults of config report.forecast (each our assumption; the config documents them).
DEFAULTS = {
    "gpu": "H100-SXM",
    "mean_prompt_tokens": 150,  # GRLO prompts: mean 66 words (paper.md section 2) plus chat template
    "response_fraction": 0.5,  # mean response = half of the max response length
    "gradient_checkpointing": True,  # train.sh: enable_gradient_checkpointing=True
    "benchmark_sizes": {},
    "stages": {},
}


def load_throughput(path: str | os.PathLike | None = None) -> dict:
    p = Path(path) if path else THROUGHPUT_PATH
    data = yaml.safe_load(read_input(p, "throughput table"))
    for name, g in (data.get("gpus") or {}).items():
        for key in ("peak_bf16_tflops", "source", "kind"):
            if key not in g:
                raise GrloError(f"missing {key!r}", path=str(p), field=f"gpus.{name}")
    return data


def effective_flops(table: dict, gpu: str, engine: str = "native") -> tuple[dict, dict]:
    """({kind: (low, central, high) FLOP/s}, {kind: efficiency entry}) for one GPU type and engine."""
    gpus = table.get("gpus") or {}
    if gpu not in gpus:
        raise GrloError(f"unknown GPU type {gpu!r} (throughput table: {', '.join(sorted(gpus))})",
                        field="report.forecast.gpu")
    eff_all = table.get("efficiency") or {}
    eff = {**(eff_all.get("default") or {}), **(eff_all.get(gpu) or {})}
    out, used = {}, {}
    for k in KINDS:
        work = ENGINE_WORK[engine][k]
        if work not in eff:
            raise GrloError(f"no efficiency for {work!r}", path=str(THROUGHPUT_PATH), field=f"efficiency.{gpu}")
        e = eff[work]
        peak = float(gpus[gpu]["peak_bf16_tflops"]) * 1e12
        out[k] = tuple(peak * float(e.get(b, e["value"])) for b in ("low", "value", "high"))
        used[k] = {**e, "work": work}
    return out, used


def _params(name: str | None) -> float:
    if not name:
        return 0.0
    return float(registry.model(name)["params_b"]) * 1e9


def _pick(cfg: dict, keys: list[str], default):
    """First config key present among `keys` (training sections first, then report.forecast.stages)."""
    for k in keys:
        v = _config.get(cfg, k)
        if v is not None:
            return v
    return default


def stage_flops(n_policy: float, n_critic: float, n_score: float, sequences: float, tokens: float,
                steps: int, ckpt: bool) -> dict:
    """FLOPs per kind for an RL stage (see the module docstring)."""
    per_step_tokens = sequences * tokens
    train_mult = 8.0 if ckpt else 6.0
    return {"decode": 2.0 * n_policy * per_step_tokens * steps,
            "forward": 2.0 * n_score * per_step_tokens * steps,
            "train": train_mult * (n_policy + n_critic) * per_step_tokens * steps}


def gpu_hours(flops: dict, rate: dict) -> tuple[float, float, float]:
    """(central, low, high) GPU-hours: the low figure takes the high efficiencies and the other way round."""
    def at(i: int) -> float:
        return sum(flops[k] / rate[k][i] for k in flops if flops[k]) / 3600.0

    return at(1), at(2), at(0)


def validation_steps(steps: int, test_freq: int, before_train: bool = True) -> list[int]:
    """verl's in-loop validation points: step 0 (val_before_train), every test_freq steps, and the last step."""
    points = [0] if before_train else []
    if test_freq and test_freq > 0:
        points += [s for s in range(1, steps + 1) if s % test_freq == 0]
        if steps and steps % test_freq:
            points.append(steps)
    return points


def run_prompts(cfg: dict, prompt_stats: dict | None = None, outdir: str | os.PathLike | None = None
                ) -> tuple[int, str]:
    """(prompt count, where it comes from) of the prompt file this run trains on, as the trainer will count it:
    the prepared set's stats, your own prompts.path file, a downloaded raw file under the outdir, the pinned file's
    row count (grlo/registry/prompts.yaml, by prompts.sha256), else the forecast's assumption (the paper's 5K)."""
    if (prompt_stats or {}).get("count"):
        return int(prompt_stats["count"]), "prepared prompts (stats.json)"
    own = _config.get(cfg, "prompts.path")
    if own:
        try:
            f = resolve_source_path(own)
        except GrloError:
            f = None
        if f is not None and f.is_file():
            with open(f, encoding="utf-8") as fh:
                return sum(1 for line in fh if line.strip()), f"prompts.path {own}"
    elif _config.get(cfg, "prompts.url"):
        pinned = _config.pinned_prompt_count(_config.get(cfg, "prompts.sha256"))
        if pinned is not None:
            return pinned, "the pinned prompt file (prompts.sha256; the public release: 1,000 of the paper's 5K)"
    assumed = int(((_config.get(cfg, "report.forecast.stages") or {}).get("grlo") or {}).get("prompts")
                  or DEFAULT_PROMPTS)
    return assumed, "assumed (report.forecast.stages.grlo.prompts): the prompt file is known only once prepared"


def run_storage(cfg: dict) -> tuple[float, list[str]]:
    """(bytes, the parts) the run writes, with GRLO's steps from the run's own plan: the one storage estimate that
    `grlo forecast` prints and `grlo doctor` checks."""
    return storage_estimate(cfg, grlo_plan(cfg)["steps"])


def grlo_plan(cfg: dict, prompt_stats: dict | None = None, engine: str | None = None) -> dict:
    """The GRLO run's own plan: prompts, batch (after grlo.adapt_batch_size, by the engine's rule: verl rounds to
    its micro-batches) and steps, exactly as `grlo train-grlo --dry-run` computes them."""
    st = ((_config.get(cfg, "report.forecast", {}) or {}).get("stages") or {}).get("grlo") or {}
    g = cfg.get("grlo") if isinstance(cfg.get("grlo"), dict) else {}
    engine = engine or g.get("engine", "native")
    n, src = run_prompts(cfg, prompt_stats)
    batch = int(g.get("train_batch_size") or st.get("batch_prompts") or 1024)
    adapted = None
    try:  # the trainer's own batch rule (adapt or refuse); it imports torch
        from grlo.train.batching import resolve_batch_sizes  # heavy: torch
    except ImportError:  # the host env (envs/snakemake.yaml): no torch, the first rule only
        resolve_batch_sizes = None
        if batch > n and g.get("adapt_batch_size"):
            batch, adapted = n, {"train_batch_size": [batch, n]}
    if resolve_batch_sizes is not None and "actor" in g and "critic" in g:
        g2 = {**g, "train_batch_size": batch}
        quiet = logging.getLogger("grlo.train.ppo")  # the adaptation is reported in the plan, not logged
        level, quiet.level = quiet.level, logging.ERROR
        try:
            got = verl_batch(g2, n, "config") if engine == "verl" else resolve_batch_sizes(
                g2, n, max(1, int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1) or 1)), "config")
        finally:
            quiet.level = level
        batch, adapted = int(got["train_batch_size"]), got["adapted"]
    epochs = int(g.get("total_epochs") or 15)
    fixed = g.get("total_training_steps")
    if fixed is not None:
        steps, how = int(fixed), "grlo.total_training_steps"
    elif st.get("steps") is not None:
        steps, how = int(st["steps"]), "report.forecast.stages.grlo.steps"
    else:  # verl: batches per epoch (last partial batch dropped) x epochs
        steps = (n // batch) * epochs
        how = f"{epochs} epochs x floor({n} prompts / batch {batch}) (last partial batch dropped)"
    how += f"; {n} prompts: {src}" + (f"; batch adapted from {adapted['train_batch_size'][0]}" if adapted else "")
    return {"prompts": n, "prompts_from": src, "batch": batch, "steps": steps, "how": how,
            "samples": int((g.get("rollout") or {}).get("n") or st.get("samples") or 1),
            "max_response_tokens": float(g.get("max_response_length") or st.get("max_response_tokens") or 3072)}


def plan(cfg: dict, table: dict, prompt_stats: dict | None = None, engine: str | None = None
         ) -> tuple[list[dict], list[str]]:
    """Rows (one per stage and backbone / evaluated model) and the assumptions used.

    `prompt_stats` (data/prompts/{backbone}/stats.json of a prepared set) replaces the assumed mean prompt length by
    the measured one (token_length.mean) and the assumed prompt count by its `count`. `engine` overrides grlo.engine.
    """
    fc = {**DEFAULTS, **(_config.get(cfg, "report.forecast", {}) or {})}
    measured_prompt = (prompt_stats or {}).get("token_length", {}).get("mean")
    if measured_prompt:
        fc["mean_prompt_tokens"] = float(measured_prompt)
    gpu = fc["gpu"]
    engine = engine or _config.get(cfg, "grlo.engine", "native")
    if engine not in ENGINES:
        raise GrloError(f"unknown engine {engine!r} (verl, native)", field="grlo.engine")
    rate, eff = effective_flops(table, gpu, engine)
    rate_trl, eff_trl = effective_flops(table, gpu, "trl")
    frac = float(fc["response_fraction"])
    p_tok = float(fc["mean_prompt_tokens"])
    ckpt = bool(fc["gradient_checkpointing"])
    st = fc.get("stages") or {}
    primary = _config.get(cfg, "backbones.primary")
    extra = list(_config.get(cfg, "backbones.extra", []) or [])
    rm = _config.get(cfg, "reward_model")
    gp = grlo_plan(cfg, prompt_stats, engine)
    g_prompts, g_batch, g_steps = gp["prompts"], gp["batch"], gp["steps"]
    g_n, g_resp = gp["samples"], gp["max_response_tokens"]
    ckpt = bool(_pick(cfg, ["grlo.actor.gradient_checkpointing"], ckpt))
    assumptions = [
        f"GPU type {gpu}: peak {table['gpus'][gpu]['peak_bf16_tflops']} bf16 TFLOP/s ({table['gpus'][gpu]['kind']}: "
        f"{table['gpus'][gpu]['source']})",
        f"engine {engine}: GRLO training on "
        + ("verl (packed sequences)" if engine == "verl" else "the native trainer (padded micro-batches)"),
        *[f"efficiency {k} = {eff[k]['value']} (range {eff[k].get('low', eff[k]['value'])}-"
          f"{eff[k].get('high', eff[k]['value'])}; {eff[k]['work']}, {eff[k]['kind']}: {eff[k]['source']})"
          for k in KINDS],
        *[f"RLVR (TRL, padded) efficiency {k} = {eff_trl[k]['value']} ({eff_trl[k]['work']})" for k in KINDS
          if eff_trl[k]["work"] != eff[k]["work"]],
        f"GRLO steps = {g_steps} of {g_batch} prompts: {gp['how']}",
        f"mean prompt tokens = {p_tok:g} ({'measured: prepared prompts' if measured_prompt else 'assumed'}); "
        f"mean response = {frac:g} x max response tokens",
        "FLOPs = 2N/token forward and decode, 8N (6N without gradient checkpointing) forward+backward; attention "
        "FLOPs ignored (underestimates long sequences)",
    ]
    rows = []
    backbones = [primary] + extra
    sizes = fc.get("benchmark_sizes") or {}
    missing: list[str] = []

    def add(stage: str, model: str, flops: dict, detail: str, work_rate: dict | None = None, eng: str = "") -> None:
        mid, low, high = gpu_hours(flops, work_rate or rate)
        rows.append({"stage": stage, "model": model, "engine": eng,
                     **{f"{k}_pflop": flops[k] / 1e15 for k in KINDS},
                     "gpu_hours": mid, "gpu_hours_low": low, "gpu_hours_high": high, "gpu": gpu, "detail": detail})

    # only the stages the evaluated variants need (the DAG builds nothing else)
    def needs(bb: str, stage: str) -> bool:
        variants = set(_config.get(cfg, "evaluation.variants" if bb == primary else "evaluation.extra_variants", [])
                       or [])
        if stage == "grlo":
            return bool(variants & {"grlo", "grlo-rlvr"})
        return stage in variants

    if cfg.get("mode") == "smoke":
        assumptions.append("smoke mode: sizes are the smoke config's, parameter counts the paper models' (registry "
                           "params_b): a what-if for paper models, not the cost of the smoke run")
    for bb in backbones:
        if not needs(bb, "grlo"):
            continue
        n = _params(bb)
        t = p_tok + frac * g_resp
        flops = stage_flops(n, n, n + n + _params(rm), g_batch * g_n, t, g_steps, ckpt)
        detail = (f"{g_steps} steps x {g_batch} prompts x {g_n} sample(s) x {t:g} tokens; actor+critic "
                  f"{n / 1e9:g}B, RM {_params(rm) / 1e9:g}B")
        if engine == "verl":  # in-loop validation (train.sh: val_before_train default, test_freq 7), greedy
            points = validation_steps(g_steps, int(_pick(cfg, ["grlo.test_freq"], 0) or 0))
            val_bench = _pick(cfg, ["grlo.verl.val_benchmark"], None)
            val_n = _bench_size(val_bench, sizes) if val_bench else None
            if points and val_n:
                flops["decode"] += 2.0 * n * len(points) * val_n * t
                detail += f"; + {len(points)} validation passes x {val_n} {val_bench} prompts (greedy)"
                note = (f"verl in-loop validation at steps {', '.join(map(str, points))} (val_before_train, "
                        f"grlo.test_freq; train.sh), {val_n} prompts of grlo.verl.val_benchmark {val_bench}, greedy "
                        f"decode of mean {t:g} tokens (rule-scored: no RM pass)")
                if note not in assumptions:
                    assumptions.append(note)
            elif points:
                missing.append(str(val_bench))
        add("grlo", bb, flops, detail, eng=engine)
    rlvr_mode = _config.get(cfg, "rlvr.mode", "checkpoint")
    r = {**{"steps": 0, "batch_prompts": 1024, "samples": 8, "max_response_tokens": 8192, "beta": 1e-4,
            "verifier": None}, **(st.get("rlvr") or {})}
    r_batch = int(_pick(cfg, ["rlvr.train.batch_prompts"], r["batch_prompts"]))
    r_per_batch = rlvr_optimizer_steps_per_batch(cfg, r_batch)
    r_steps = rlvr_batches(_pick(cfg, ["rlvr.stages.rlvr.max_steps", "rlvr.train.max_steps"], None), r_per_batch)
    if r_steps is None:  # epochs over the (subset of the) RLVR data, as GRPO would run them
        n_data = _pick(cfg, ["rlvr.data.subset", "rlvr.checkpoint.reported_cost.train_prompts"], None)
        epochs = _pick(cfg, ["rlvr.train.epochs"], None)
        r_steps = math.ceil(epochs * n_data / r_batch) if n_data and epochs else r["steps"]
    r_steps = int(r_steps)
    r_n = int(_pick(cfg, ["rlvr.train.num_generations"], r["samples"]))
    r_resp = float(_pick(cfg, ["rlvr.train.max_completion_length"], r["max_response_tokens"]))
    r_beta = float(_pick(cfg, ["rlvr.train.beta"], r["beta"]))
    verifier = r.get("verifier")
    if _config.get(cfg, "rlvr.reward.verifier") is not None:
        verifier = "general-verifier" if _config.get(cfg, "rlvr.reward.verifier") == "general-verifier" else None
    t = p_tok + frac * r_resp
    assumptions.append(f"RLVR: {r_batch} prompts x {r_n} samples per step, max response {r_resp:g}, beta {r_beta:g}, "
                       f"verifier {verifier or 'rule-based (no GPU)'}")
    r_engine = _config.get(cfg, "rlvr.engine", "trl")
    rlvr_rates = {"verl": effective_flops(table, gpu, "verl")[0], "trl": rate_trl}
    assumptions.append(f"RLVR engine {r_engine} (rlvr.engine) counts in the total; the stage is also priced on "
                       f"{'trl' if r_engine == 'verl' else 'verl'} (not counted): verl on packed, TRL on padded "
                       "efficiencies, the same FLOPs (one GRPO recipe); a step = one generation batch "
                       f"(rlvr max_steps are optimizer steps: {r_per_batch} per batch = batch / mini_batch_prompts)")

    def add_rlvr(stage: str, model: str, flops: dict, detail: str) -> None:
        """One row per RLVR engine; the configured one counts in the total."""
        for eng in ("verl", "trl"):
            add(stage, model, flops, detail, rlvr_rates[eng], eng)
            rows[-1]["in_total"] = eng == r_engine
    for bb in backbones:
        if not needs(bb, "rlvr"):
            continue
        n = _params(bb)
        score_n = (n if r_beta > 0 else 0.0) + _params(verifier)
        detail = f"{r_steps} steps x {r_batch} prompts x {r_n} samples x {t:g} tokens"
        if bb == primary and rlvr_mode == "checkpoint":
            add("rlvr", bb, dict.fromkeys(KINDS, 0.0), "rlvr.mode=checkpoint: public checkpoint, not trained here")
        else:
            add_rlvr("rlvr", bb, stage_flops(n, 0.0, score_n, r_batch * r_n, t, r_steps, ckpt), detail)
    gr = {**{"steps": r_steps}, **(st.get("grlo-rlvr") or {})}
    gr_max = _pick(cfg, ["rlvr.stages.grlo-rlvr.max_steps"], None)
    gr_steps = int(rlvr_batches(gr_max, r_per_batch) if gr_max is not None else gr["steps"])
    n = _params(primary)
    if needs(primary, "grlo-rlvr"):
        add_rlvr("grlo-rlvr", primary, stage_flops(n, 0.0, (n if r_beta > 0 else 0.0) + _params(verifier),
                                                   r_batch * r_n, t, gr_steps, ckpt),
                 f"{gr_steps} steps x {r_batch} prompts x {r_n} samples x {t:g} tokens")
    # evaluation: every model x benchmark
    models = [f"{primary}--{v}" for v in _config.get(cfg, "evaluation.variants", [])]
    models += list(_config.get(cfg, "evaluation.released", []) or [])
    models += [f"{bb}--{v}" for bb in extra for v in _config.get(cfg, "evaluation.extra_variants", [])]
    for m in models:
        n = _params(m.partition("--")[0])
        total = dict.fromkeys(KINDS, 0.0)
        parts = []
        for b in _config.get(cfg, "evaluation.benchmarks", []) or []:
            sampling, _, limit = eval_settings(cfg, m, b)
            size = _bench(b).get("size", sizes.get(b))
            if limit is not None:
                size = min(size, limit) if size else limit
            if not size:
                missing.append(b)
                continue
            k = int(sampling.n)
            total["decode"] += 2.0 * n * size * k * (p_tok + frac * sampling.max_tokens)
            parts.append(f"{b} {size}x{k}x{sampling.max_tokens}")
        add("eval", m, total, ", ".join(parts))
    if missing:
        assumptions.append("benchmarks without a known size (excluded; set report.forecast.benchmark_sizes): "
                           + ", ".join(sorted(set(missing))))
    return rows, assumptions


def rlvr_optimizer_steps_per_batch(cfg: dict, batch: int) -> int:
    """TRL's and verl's RLVR step budget (rlvr max_steps) counts optimizer steps, batch / mini_batch_prompts of
    them per generation batch (grlo.train.rlvr.batch_layout; verl: ppo_mini_batch_size)."""
    mini = _pick(cfg, ["rlvr.train.mini_batch_prompts"], None)
    return max(1, batch // int(mini)) if mini else 1


def rlvr_batches(max_steps, per_batch: int) -> int | None:
    """Generation batches (the forecast's RL steps) for an RLVR optimizer-step budget; None stays None."""
    return None if max_steps is None else math.ceil(int(max_steps) / per_batch)


def _bench_size(name: str, sizes: dict) -> int | None:
    try:
        return _bench(name).get("size", sizes.get(name))
    except GrloError:
        return sizes.get(name)


# ------------------------------------------------------------------------------------------- SLURM time limits
# Which rule runs each forecast stage (one job per row: a training run, or one model's generation of every
# benchmark). A new engine or stage adds its line here.
STAGE_RULE = {"grlo": "train_grlo", "rlvr": "train_rlvr", "grlo-rlvr": "train_rlvr", "eval": "generate"}
SLURM_MARGIN = 1.25  # our choice: over the forecast's HIGH end (the lowest efficiencies), for start-up and noise
SLURM_MIN_MINUTES = 60  # our choice: start-up (image, model load, vLLM / Ray start) is not in the forecast


def job_runtimes(cfg: dict, rows: list[dict] | None = None) -> dict[str, dict]:
    """{rule: {minutes, hours_high, job}}: the longest job of each GPU rule at the forecast's high end on its own GPUs,
    times SLURM_MARGIN, rounded up to 30 minutes: the time limit its SLURM jobs need."""
    if rows is None:
        rows, _ = plan(cfg, load_throughput())
    gpus = rule_gpus(cfg)
    out: dict[str, dict] = {}
    for r in rows:
        rule = STAGE_RULE.get(r["stage"])
        if not rule or not r["gpu_hours_high"]:
            continue
        hours = r["gpu_hours_high"] / max(1, int(gpus.get(rule) or 1))
        if hours > out.get(rule, {}).get("hours_high", -1.0):
            minutes = max(SLURM_MIN_MINUTES, int(math.ceil(hours * SLURM_MARGIN * 60 / 30.0) * 30))
            out[rule] = {"minutes": minutes, "hours_high": hours, "job": f"{r['model']} ({r['stage']})"}
    return out


COLUMNS = ["stage", "model", "engine", "in_total", "decode_pflop", "forward_pflop", "train_pflop", "gpu_hours", "gpu_hours_low",
           "gpu_hours_high", "gpu", "detail"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--throughput", help="throughput table (default: grlo/report/throughput.yaml)")
    p.add_argument("--gpu", help="override report.forecast.gpu")
    p.add_argument("--engine", choices=ENGINES, help="override grlo.engine (verl | native)")
    p.add_argument("--prompt-stats", help="optional data/prompts/{backbone}/stats.json: measured mean prompt tokens")
    p.add_argument("--output", help="results/forecast.csv (a .md beside it); without it, print only")


def run(args: argparse.Namespace) -> int:
    cfg = common.load_config(args.config)
    if args.gpu:
        cfg = _config.deep_merge(cfg, {"report": {"forecast": {"gpu": args.gpu}}})
    stats = None
    if args.prompt_stats:
        stats = read_json(args.prompt_stats)
    rows, assumptions = plan(cfg, load_throughput(args.throughput), stats, getattr(args, "engine", None))
    cols = ("gpu_hours", "gpu_hours_low", "gpu_hours_high")
    by_stage: dict[str, list[float]] = {}
    for r in rows:
        if not r.get("in_total", True):  # an RLVR stage priced on the engine not configured
            continue
        acc = by_stage.setdefault(r["stage"], [0.0, 0.0, 0.0])
        for i, c in enumerate(cols):
            acc[i] += r[c]
    total = [sum(v[i] for v in by_stage.values()) for i in range(3)]
    rows_out = rows + [{"stage": "total", "model": "", **dict(zip(cols, total)), "gpu": rows[0]["gpu"] if rows else ""}]
    print("GPU-hours forecast for this config (" + cfg.get("mode", "paper") + " mode): central (low-high)")
    for s, (h, lo, hi) in by_stage.items():
        print(f"  {s:<10} {h:10.2f} ({lo:.2f}-{hi:.2f})")
        for r in rows:
            if r["stage"] == s and r["gpu_hours"] and len([x for x in rows if x["stage"] == s]) > 1:
                name = r["model"] if "in_total" not in r else f"{r['model']} on {r['engine']}" + (
                    "" if r["in_total"] else " (not in total)")
                print(f"    {name:<34} {r['gpu_hours']:10.2f} ({r['gpu_hours_low']:.2f}-{r['gpu_hours_high']:.2f})")
    print(f"  {'total':<10} {total[0]:10.2f} ({total[1]:.2f}-{total[2]:.2f})")
    disk, parts = storage_estimate(cfg, grlo_plan(cfg, stats, getattr(args, "engine", None))["steps"])
    assumptions.append(f"storage: ~{disk / GIB:.0f} GiB written under outdir ({'; '.join(parts)}); grlo doctor "
                       "checks the free space against it")
    print(f"storage: ~{disk / GIB:.0f} GiB (weights, final and resume checkpoints; grlo doctor checks free space)")
    print("assumptions:")
    for a in assumptions:
        print(f"  - {a}")
    if args.output:
        common.write_csv_md(args.output, common.header_lines(cfg, "forecast, not a measurement", *assumptions),
                            COLUMNS, rows_out, md_digits=2, title="GPU-hours forecast")
    return 0
