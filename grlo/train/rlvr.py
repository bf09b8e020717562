"""`grlo train-rlvr`: the RLVR baseline and the GRLO -> RLVR stage, GRPO on TRL's GRPOTrainer.

Two ways to get the RLVR model (config `rlvr.mode`):
  checkpoint  evaluate the public General-Reasoner checkpoint (registry `rlvr.checkpoint.model`); primary backbone
              only; its training cost enters the tables as *reported* (`rlvr.checkpoint.reported_cost`, inferred).
  train       this command: GRPO from `--init` on the normalised RLVR data with a verifiable reward.
The grlo-rlvr stage always trains: same recipe, initialised from checkpoints/{backbone}/grlo/final, with its own
data subset and step budget (`rlvr.stages.grlo-rlvr`).

Recipe defaults (config/config.yaml, rlvr.train) come from General-Reasoner's launcher (inferred baseline,
results/README.md). Mapping onto TRL: one generation batch = `batch_prompts` x `num_generations` completions,
sampled once and consumed in optimizer steps of `mini_batch_prompts` prompts (verl's ppo_mini_batch_size), each
accumulated from micro-batches of `per_device_batch` completions per process.

Outputs: {output_dir}/final/ (HF model + tokenizer + manifest.json), {output_dir}/metrics.jsonl (one row per logging
step), {output_dir}/checkpoint-N/ (TRL/Trainer checkpoints; `--resume auto` continues from the newest one when the
run fingerprint matches, else stops naming the differing keys; `--fresh` starts over). SIGTERM/SIGINT save a
checkpoint at the end of the step when it fits in grlo.stop_grace_s and exit 128 + the signal.
TRL logs reward and completion metrics only on the optimizer step that sampled a generation batch: with several
optimizer steps per batch (paper recipe: 4), the other rows carry loss/KL/grad norm but no reward keys.
Multi-GPU: with `rlvr.gpus` > 1 GPUs visible the command restarts itself under `accelerate launch` (one process per
GPU, vLLM colocated, DeepSpeed ZeRO from `rlvr.train.deepspeed_zero`); under an outside launcher (WORLD_SIZE set,
e.g. multi-node srun + accelerate) it runs as the process it was started as.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from grlo import config as config_mod
from grlo.accounting import record_device
from grlo.data.rlvr_data import load_rows
from grlo.errors import GrloError
from grlo.io import atomic_path, follow_umask, library_versions, sha256_file, write_json
from grlo.models.local import check_model_dir
from grlo.train.rlvr_recipe import (  # noqa: F401 - shared with the verl engine (grlo/train/verl/rlvr_*.py)
    _FINGERPRINT, STAGES, reward_setup, run_fingerprint, stage_settings, user_content)
from grlo.train import threads
from grlo.train.verl import rlvr_launch

log = logging.getLogger(__name__)

ENGINES = ("verl", "trl")
METRICS_FILE = "metrics.jsonl"
_PARTIAL = ".metrics.partial.jsonl"  # grows during training; copied to metrics.jsonl only on success


# ------------------------------------------------------------------------------------------- glue for the Snakefile


def reported_cost(cfg: dict) -> dict | None:
    """The checkpoint's training cost as reported by its authors (not measured here); None when absent."""
    return config_mod.get(cfg, "rlvr.checkpoint.reported_cost")


# ------------------------------------------------------------------------------------------------- recipe mapping


def batch_layout(train: dict, world_size: int) -> dict:
    """Per-process micro-batch, gradient accumulation and generation batch for TRL from the prompt-level recipe."""
    g = int(train["num_generations"])
    per_dev = int(train["per_device_batch"])
    batch_prompts, mini_prompts = int(train["batch_prompts"]), int(train["mini_batch_prompts"])
    if g < 2:
        raise GrloError("GRPO needs at least 2 generations per prompt", field="rlvr.train.num_generations")
    if batch_prompts % mini_prompts:
        raise GrloError(f"batch_prompts {batch_prompts} is not a multiple of mini_batch_prompts {mini_prompts}",
                        field="rlvr.train.batch_prompts")
    per_update = mini_prompts * g  # completions per optimizer step
    per_pass = per_dev * world_size  # completions per forward/backward over all processes
    if per_update % per_pass:
        raise GrloError(f"mini_batch_prompts x num_generations = {per_update} completions is not divisible by "
                        f"per_device_batch x processes = {per_pass}", field="rlvr.train.per_device_batch")
    return {
        "per_device_train_batch_size": per_dev,
        "gradient_accumulation_steps": per_update // per_pass,
        "generation_batch_size": batch_prompts * g,
        "optimizer_steps_per_generation": batch_prompts // mini_prompts,
    }


def deepspeed_config(stage: int) -> dict | None:
    """A ZeRO config with 'auto' values that the HF Trainer fills in; None for stage 0 (plain DDP)."""
    if not stage:
        return None
    zero: dict[str, Any] = {"stage": int(stage), "overlap_comm": True, "contiguous_gradients": True}
    if int(stage) == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
    }


def grpo_kwargs(cfg: dict, stage: str, output_dir: str | os.PathLike, *, on_gpu: bool,
                world_size: int) -> tuple[dict, dict, dict]:
    """(GRPOConfig keyword arguments, stage recipe, batch layout) for this stage and machine:
    CPU (use_cpu, fp32, HF generate) or GPU (bf16, vLLM colocate, DeepSpeed ZeRO when several processes)."""
    t = stage_settings(cfg, stage)
    layout = batch_layout(t, world_size)
    use_vllm = bool(on_gpu and t.get("use_vllm", True))
    max_steps = t.get("max_steps")
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=int(cfg.get("seed", 0)),
        learning_rate=float(t["learning_rate"]),
        lr_scheduler_type="constant",  # verl default: constant lr, no warm-up
        warmup_steps=0,
        weight_decay=float(t.get("weight_decay", 0.01)),
        max_grad_norm=float(t.get("max_grad_norm", 1.0)),
        num_generations=int(t["num_generations"]),
        per_device_train_batch_size=layout["per_device_train_batch_size"],
        gradient_accumulation_steps=layout["gradient_accumulation_steps"],
        generation_batch_size=layout["generation_batch_size"],
        max_completion_length=int(t["max_completion_length"]),
        temperature=float(t.get("temperature", 1.0)),
        beta=float(t["beta"]),
        epsilon=float(t.get("epsilon", 0.2)),
        entropy_coef=float(t.get("entropy_coef", 0.0)),
        loss_type=t.get("loss_type", "dapo"),
        scale_rewards=t.get("scale_rewards", "group"),
        num_train_epochs=float(t.get("epochs", 1)),
        max_steps=int(max_steps) if max_steps else -1,
        logging_steps=int(t.get("logging_steps", 1)),
        save_strategy="steps",
        save_steps=int(t.get("save_steps", 20)),
        save_total_limit=t.get("save_total_limit"),
        gradient_checkpointing=bool(t.get("gradient_checkpointing", on_gpu)),
        report_to=list(t.get("report_to") or []),  # rlvr.train.report_to: tensorboard / wandb (off by default)
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_vllm=use_vllm,
    )
    if use_vllm:
        kwargs.update(vllm_mode="colocate",
                      vllm_gpu_memory_utilization=float(t.get("vllm_gpu_memory_utilization", 0.3)),
                      vllm_tensor_parallel_size=int(t.get("vllm_tensor_parallel_size", 1)),
                      vllm_enable_sleep_mode=bool(t.get("vllm_enable_sleep_mode", False)))
    if on_gpu:
        kwargs.update(bf16=True)
        if world_size > 1:
            ds = deepspeed_config(int(t.get("deepspeed_zero", 0)))
            if ds:
                kwargs["deepspeed"] = ds
    else:
        kwargs.update(use_cpu=True, bf16=False, fp16=False)
    if kwargs["save_total_limit"] is not None:
        kwargs["save_total_limit"] = int(kwargs["save_total_limit"])
    return kwargs, t, layout


def build_grpo_config(cfg: dict, stage: str, output_dir: str | os.PathLike, *, on_gpu: bool, world_size: int):
    from trl import GRPOConfig  # heavy: trl

    kwargs, t, layout = grpo_kwargs(cfg, stage, output_dir, on_gpu=on_gpu, world_size=world_size)
    return GRPOConfig(**kwargs), t, layout


# ----------------------------------------------------------------------------------------------------- data


def build_dataset(rows: list[dict], tokenizer, *, instruction: str | None, max_prompt_tokens: int | None):
    """Conversational prompts for TRL (question + instruction as one user turn) with over-long prompts dropped
    (General-Reasoner: filter_overlong_prompts=True). Returns (datasets.Dataset, number dropped)."""
    from datasets import Dataset  # heavy: datasets

    records, dropped = [], 0
    for r in rows:
        msgs = [{"role": "user", "content": user_content(r["prompt"], instruction)}]
        if max_prompt_tokens:
            ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):  # a BatchEncoding in recent transformers
                ids = ids["input_ids"]
            if len(ids) > max_prompt_tokens:
                dropped += 1
                continue
        records.append({"prompt": msgs, "answer": r["answer"], "question": r["prompt"], "id": r["id"]})
    return Dataset.from_list(records), dropped


# --------------------------------------------------------------------------------------------- metrics & resume

# TRL/Trainer log keys -> our metrics.jsonl names; every other numeric key is kept under its own name.
_RENAME = {"reward": "reward_mean", "completions/mean_length": "completion_length_mean"}
_SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss")


def make_metrics_callback(path: Path, start_step: int = 0):
    """A TrainerCallback appending one JSON row per logging step: step, time_s, reward mean, each reward part,
    completion length, KL, loss, grad norm (plus TRL's other scalars)."""
    from transformers import TrainerCallback  # heavy: transformers

    class MetricsJsonl(TrainerCallback):
        def __init__(self):
            self.t0 = time.monotonic()
            self.offset = _last_time(path)  # time continues across a resume
            self.summary: dict = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if any(k in logs for k in _SUMMARY_KEYS):
                self.summary.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
                return
            row: dict[str, Any] = {"step": int(state.global_step),
                                   "time_s": round(self.offset + time.monotonic() - self.t0, 3)}
            for k, v in logs.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    v = float(v)
                    row[_RENAME.get(k, k)] = None if math.isnan(v) else v
            row.setdefault("kl", None)  # beta = 0: no reference model, no KL
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return MetricsJsonl()


def make_stop_callback(stop):
    """A TrainerCallback that, once SIGTERM/SIGINT arrived (grlo.train.stopping.StopOnSignal), saves a checkpoint at
    the end of the current optimizer step and ends training; it also times the steps and the saves for the decision
    whether a checkpoint still fits."""
    from transformers import TrainerCallback  # heavy: transformers

    class StopOnSignalCallback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            stop.step_started()

        def on_step_end(self, args, state, control, **kwargs):
            stop.step_finished()
            if stop.requested():
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_save(self, args, state, control, **kwargs):
            stop.saved(max(0.0, stop.since_step_start() - (stop.step_s or 0.0)))

    return StopOnSignalCallback()


def _last_time(path: Path) -> float:
    if not path.exists():
        return 0.0
    last = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            last = json.loads(line).get("time_s", last)
    return float(last)


def truncate_metrics(path: Path, max_step: int) -> int:
    """Keep rows with step <= max_step (the checkpoint resumed from); returns rows kept. Missing file -> 0."""
    if not path.exists():
        return 0
    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and json.loads(ln).get("step", 0) <= max_step]
    path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")
    return len(keep)


def _checkpoints(output_dir: Path) -> list[Path]:
    return sorted(p for p in output_dir.glob("checkpoint-*") if p.is_dir())


def check_checkpoints(output_dir: Path, fingerprint: dict, fresh: bool = False) -> None:
    """Checkpoints written by a run with another fingerprint are refused, naming the differing keys; `fresh`
    removes them (and the partial metrics) instead. Then this run's fingerprint is recorded for its own resume."""
    from grlo.train import checkpoint as ckpt  # heavy: torch

    fp_path = output_dir / _FINGERPRINT
    existing = _checkpoints(output_dir)
    if fresh:
        for c in existing:
            shutil.rmtree(c)
        (output_dir / _PARTIAL).unlink(missing_ok=True)
    elif existing:
        old = json.loads(fp_path.read_text()) if fp_path.exists() else None
        ckpt.check_fingerprint(old, fingerprint, str(existing[-1]), fresh_key="rlvr.fresh")
    write_json(fp_path, fingerprint)


def resolve_resume(output_dir: Path, resume: str) -> str | None:
    """--resume auto: newest checkpoint-N in output_dir (or None); none: start over; else an explicit path."""
    if resume == "none":
        return None
    if resume == "auto":
        from transformers.trainer_utils import get_last_checkpoint  # heavy: transformers

        return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if not Path(resume).is_dir():
        raise GrloError("checkpoint directory not found", path=resume, field="--resume")
    return resume


def _checkpoint_step(ckpt: str) -> int:
    state = Path(ckpt) / "trainer_state.json"
    if state.exists():
        return int(json.loads(state.read_text())["global_step"])
    return int(Path(ckpt).name.rsplit("-", 1)[-1])


# ------------------------------------------------------------------------------------------------------ command


def add_arguments(p) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, merged in order")
    p.add_argument("--backbone", required=True, help="registry name of the backbone (for the manifest)")
    p.add_argument("--init", default=None,
                   help="HF dir to start from (default: models/{backbone}, or checkpoints/{backbone}/grlo/final for "
                        "grlo-rlvr, under the config's outdir)")
    p.add_argument("--data", default=None, help="normalised RLVR JSONL (default: data/rlvr/train.jsonl)")
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--output-dir", default=None, help="default: checkpoints/{backbone}/{stage}")
    p.add_argument("--engine", default=None, choices=ENGINES, help="override rlvr.engine (verl | trl)")
    p.add_argument("--dry-run", action="store_true", help="print the training command and exit")
    p.add_argument("--device-record", default=None, help="write the devices used here (benchmarks/...device.json)")
    p.add_argument("--resume", default="auto", help="auto (newest checkpoint-N in --output-dir), none, or a path")
    p.add_argument("--fresh", action="store_true",
                   help="start over: delete the checkpoints of --output-dir instead of resuming them")
    p.add_argument("--verifier", default=None,
                   help="HF dir of the model-based verifier (models/general-verifier) when rlvr.reward.verifier is "
                        "general-verifier; overrides rlvr.reward.verifier_path")
    threads.add_argument(p)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def processes_to_launch(on_gpu: bool, gpus_requested: int, gpus_visible: int, env: dict) -> int:
    """How many processes this command must start itself: >1 only on GPU, when several GPUs are asked for and seen,
    and when no launcher (accelerate, torchrun, srun + accelerate) already started us (WORLD_SIZE unset)."""
    if not on_gpu or "WORLD_SIZE" in env:
        return 1
    return max(1, min(gpus_requested, gpus_visible))


def launch_command(args, nproc: int) -> list[str]:
    """The same train-rlvr call under `accelerate launch`, one process per GPU (DeepSpeed comes from GRPOConfig)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(nproc),
           "--num_machines", "1", "--mixed_precision", "bf16", "--dynamo_backend", "no",
           "-m", "grlo.cli", "train-rlvr", "--config", *map(str, args.config), "--backbone", args.backbone,
           "--init", str(args.init), "--data", str(args.data), "--stage", args.stage,
           "--output-dir", str(args.output_dir), "--resume", args.resume, "--engine", "trl"]
    if args.device_record:
        cmd += ["--device-record", str(args.device_record)]
    if getattr(args, "verifier", None):
        cmd += ["--verifier", str(args.verifier)]
    if getattr(args, "fresh", False):
        cmd.append("--fresh")
    if getattr(args, "threads", None):
        cmd += ["--threads", str(args.threads)]
    return cmd


def engine_of(cfg: dict, override: str | None = None) -> str:
    """rlvr.engine (verl: General-Reasoner's own engine, the paper default | trl: TRL's GRPOTrainer)."""
    e = override or config_mod.get(cfg, "rlvr.engine", "trl")
    if e not in ENGINES:
        raise GrloError(f"unknown engine {e!r} (allowed: verl, trl)", field="rlvr.engine")
    return e


def rlvr_image(cfg: dict, main_image: str) -> str:
    """train_rlvr's container: the verl image (container.verl_image) for rlvr.engine verl, else the main image."""
    if engine_of(cfg) != "verl":
        return main_image
    image = config_mod.get(cfg, "container.verl_image")
    if not image:
        raise GrloError("rlvr.engine verl needs the verl image (docker/verl.Dockerfile)", path="config",
                        field="container.verl_image")
    return image


def default_paths(cfg: dict, backbone: str, stage: str) -> dict[str, str]:
    """The paths workflow/rules/train.smk passes (under the config's outdir)."""
    o = (cfg.get("outdir") or "").rstrip("/")
    o = f"{o}/" if o else ""
    init = f"checkpoints/{backbone}/grlo/final" if stage == "grlo-rlvr" else f"models/{backbone}"
    return {"init": o + init, "data": f"{o}data/rlvr/train.jsonl", "output_dir": f"{o}checkpoints/{backbone}/{stage}"}


def run(args) -> int:
    cfg = config_mod.load(args.config)
    args.fresh = bool(getattr(args, "fresh", False) or config_mod.get(cfg, "rlvr.fresh"))  # the rule passes no flag
    threads.apply(getattr(args, "threads", None), torch_here=True)
    for k, v in default_paths(cfg, args.backbone, args.stage).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    engine = engine_of(cfg, getattr(args, "engine", None))
    if engine == "verl":
        return rlvr_launch.dry_run(cfg, args) if args.dry_run else rlvr_launch.execute(cfg, args)
    if getattr(args, "dry_run", False):
        return trl_dry_run(cfg, args)
    return run_trl(cfg, args)


def trl_dry_run(cfg: dict, args) -> int:
    """The TRL engine's plan: the GRPOConfig arguments on one GPU process per rlvr.gpus GPU."""
    gpus = int(config_mod.get(cfg, "rlvr.gpus", 0) or 0)
    world = max(1, gpus)
    kwargs, t, layout = grpo_kwargs(cfg, args.stage, args.output_dir, on_gpu=gpus > 0, world_size=world)
    print(f"# engine: trl GRPOTrainer; stage {args.stage}; {world} processes on {'GPU' if gpus else 'CPU'}; "
          f"batch layout {json.dumps(layout)}")
    print(" \\\n    ".join(["grlo train-rlvr", "--config", *map(str, args.config), "--backbone", args.backbone,
                              "--init", str(args.init), "--data", str(args.data), "--stage", args.stage,
                              "--output-dir", str(args.output_dir)]))
    for k, v in kwargs.items():
        print(f"# GRPOConfig.{k} = {v!r}")
    return 0


def run_trl(cfg: dict, args) -> int:
    init = Path(args.init)
    if not (init / "config.json").exists():
        raise GrloError("not an HF model directory (no config.json)", path=str(init), field="--init")
    rows = load_rows(args.data)  # validates every row before any heavy import

    import torch  # heavy: torch
    from transformers import AutoTokenizer  # heavy: transformers

    gpus_requested = int(config_mod.get(cfg, "rlvr.gpus", config_mod.get(cfg, "resources.gpus_train", 0)) or 0)
    on_gpu = torch.cuda.is_available() and gpus_requested > 0
    nproc = processes_to_launch(on_gpu, gpus_requested, torch.cuda.device_count() if on_gpu else 0, dict(os.environ))
    if nproc > 1:
        cmd = launch_command(args, nproc)
        log.info("starting %d training processes: %s", nproc, " ".join(cmd))
        return subprocess.call(cmd)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _world_size()
    gcfg, t, layout = build_grpo_config(cfg, args.stage, out, on_gpu=on_gpu, world_size=world)
    if gcfg.use_vllm:
        try:
            import vllm  # optional: vllm  # noqa: F401
        except ImportError:
            raise GrloError("vLLM is not installed (pip install -e .[gpu]) ; or set use_vllm: false",
                            field="rlvr.train.use_vllm") from None

    max_prompts = t.get("max_prompts")
    if max_prompts:
        rows = rows[: int(max_prompts)]
    tok = AutoTokenizer.from_pretrained(check_model_dir(init, "init model", tokenizer=True), padding_side="left")
    if tok.chat_template is None:
        raise GrloError("the tokenizer has no chat template", path=str(init), field="chat_template")
    instruction = config_mod.get(cfg, "rlvr.data.instruction")
    dataset, dropped = build_dataset(rows, tok, instruction=instruction, max_prompt_tokens=t.get("max_prompt_tokens"))
    if len(dataset) < int(t["batch_prompts"]):
        raise GrloError(f"{len(dataset)} prompts after filtering, fewer than one batch of {t['batch_prompts']}",
                        field="rlvr.train.batch_prompts")

    if getattr(args, "verifier", None):
        cfg["rlvr"].setdefault("reward", {})["verifier_path"] = args.verifier
    reward_funcs, reward_weights = _reward_setup(cfg, tok)
    gcfg.reward_weights = reward_weights

    data_sha = sha256_file(args.data)
    reward_cfg = config_mod.get(cfg, "rlvr.reward")
    fingerprint = run_fingerprint(t, args.init, args.data, args.stage, reward_cfg, int(cfg.get("seed", 0)))
    from accelerate import PartialState  # heavy: accelerate

    from grlo.train.checkpoint import clean_litter  # heavy: torch

    procs = PartialState()  # the process group GRPOConfig set up; a barrier orders the clean-up before the resume
    if procs.is_main_process:
        for litter in clean_litter(out):
            log.info("removed %s left by an interrupted run", litter)
        if args.resume == "auto" or getattr(args, "fresh", False):
            check_checkpoints(out, fingerprint, fresh=getattr(args, "fresh", False))
    procs.wait_for_everyone()
    ckpt = resolve_resume(out, args.resume)
    partial = out / _PARTIAL
    if procs.is_main_process:
        if ckpt:
            truncate_metrics(partial, _checkpoint_step(ckpt))
            log.info("resuming from %s", ckpt)
        elif partial.exists():
            partial.unlink()
    metrics_cb = make_metrics_callback(partial)

    from trl import GRPOTrainer  # heavy: trl

    from grlo.train.stopping import StopOnSignal, TrainingInterrupted  # heavy: torch

    gcfg.model_init_kwargs = {"dtype": torch.bfloat16 if on_gpu else torch.float32}
    stop = StopOnSignal(float(config_mod.get(cfg, "grlo.stop_grace_s", 25.0)), save_s=0.0)  # one grace setting
    trainer = GRPOTrainer(model=str(init), reward_funcs=reward_funcs, args=gcfg, train_dataset=dataset,
                          processing_class=tok, callbacks=[metrics_cb, make_stop_callback(stop)])
    t0 = time.time()
    try:
        with stop:
            trainer.train(resume_from_checkpoint=ckpt)
    except TrainingInterrupted as e:  # no time for a checkpoint: the last saved one stays the resume point
        print(f"grlo train-rlvr: stopped by signal {e.signum}: no new checkpoint (not enough time)", file=sys.stderr)
        return 128 + int(e.signum)
    finally:
        if procs.is_main_process:
            clean_litter(out)
    if stop.signum is not None:
        print(f"grlo train-rlvr: stopped by signal {stop.signum}: checkpoint saved at step "
              f"{trainer.state.global_step}; rerun to resume", file=sys.stderr)
        return 128 + int(stop.signum)
    wall = time.time() - t0

    manifest = {
        "engine": "trl", "stage": args.stage, "backbone": args.backbone, "init": str(init), "data": str(args.data),
        "data_sha256": data_sha, "prompts": len(dataset), "prompts_dropped_overlong": dropped,
        "global_step": int(trainer.state.global_step), "resumed_from": ckpt, "wall_s_this_run": round(wall, 1),
        "device": "cuda" if on_gpu else "cpu", "world_size": world, "use_vllm": bool(gcfg.use_vllm),
        "recipe": {k: v for k, v in t.items()}, "batch_layout": layout,
        "reward": reward_cfg, "reward_weights": reward_weights,
        "summary": metrics_cb.summary, "config_hash": config_mod.config_hash(config_mod.get(cfg, "rlvr")),
        "versions": library_versions(("torch", "transformers", "trl", "accelerate", "deepspeed", "vllm",
                                      "math-verify")),
        "provenance": "recipe defaults inferred from General-Reasoner (results/README.md, What is known about the paper)",
    }
    _save_final(trainer, tok, out, manifest)
    if trainer.accelerator.is_main_process:
        with atomic_path(out / METRICS_FILE) as tmp:
            if partial.exists():
                shutil.copyfile(partial, tmp)
        if not t.get("keep_checkpoints", False):  # a finished run needs no resume state (tens of GB each)
            for c in _checkpoints(out):
                shutil.rmtree(c)
        if args.device_record:
            # one GPU per process on this node (vLLM colocates on the same GPU); the accounting multiplies by
            # SLURM_NNODES for multi-node jobs; CPU runs are charged none
            local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
            record_device(args.device_record, local if on_gpu else 0)
    return 0


def _reward_setup(cfg: dict, tok) -> tuple[list, list[float]]:
    """[general_reasoner, correct] reward functions and their weights: the chosen kind trains, the other is logged."""
    return reward_setup(config_mod.get(cfg, "rlvr.reward", {}) or {}, tok)


def _save_final(trainer, tok, out: Path, manifest: dict) -> None:
    """final/ appears only complete: every process saves into one staging dir, the main process renames it."""
    stage_dir, final = out / ".final.part", out / "final"
    acc = trainer.accelerator
    if acc.is_main_process and stage_dir.exists():
        shutil.rmtree(stage_dir)
    acc.wait_for_everyone()
    trainer.save_model(str(stage_dir))  # collective under DeepSpeed ZeRO-3; only the main process writes
    if acc.is_main_process:
        tok.save_pretrained(str(stage_dir))
        write_json(stage_dir / "manifest.json", manifest)
        follow_umask(stage_dir)  # TRL's safetensors writer makes 0600 files; final/ follows the umask like every output
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage_dir, final)
    acc.wait_for_everyone()
