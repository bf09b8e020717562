"""`grlo train-grlo`: GRLO's PPO on the engine `grlo.engine` selects.

  verl    paper mode: verl 0.6.1's `main_ppo` (the engine the paper's numbers came from) with train.sh's overrides and
          our declared deviations (grlo.train.verl.overrides), in the verl image; then verl's metrics -> metrics.jsonl
          and its last checkpoint -> final/ (Hugging Face model + policy tokenizer + manifest.json).
  native  our own PPO trainer (grlo.train.ppo, unchanged): CPU smoke runs, tests, one small GPU.

Paths default to the workflow's (workflow/rules/train.smk), so
`grlo train-grlo --config config/config.yaml --backbone qwen3-4b-base --dry-run` prints the exact command.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from pathlib import Path

from grlo import config as C
from grlo.accounting import record_device
from grlo.errors import GrloError
from grlo.train import threads
from grlo.train.verl import data, finalize, launch
from grlo.train.verl import cpu as cpu_mod
from grlo.train.verl import metrics as M
from grlo.train.verl import overrides as O
from grlo.train.verl import run as verl_run

log = logging.getLogger("grlo.train.train_grlo")
ENGINES = ("verl", "native")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, deep-merged in order")
    p.add_argument("--backbone", required=True, help="registry name of the backbone")
    p.add_argument("--engine", choices=ENGINES, default=None, help="override grlo.engine")
    p.add_argument("--prompts", default=None, help="prepared prompts JSONL (default: the workflow's)")
    p.add_argument("--policy-init", default=None, help="HF dir of the backbone (default: the workflow's)")
    p.add_argument("--reward-model", default=None, help="HF dir of the reward model (default: the workflow's)")
    p.add_argument("--output-dir", default=None, help="final/, metrics.jsonl, checkpoints (default: the workflow's)")
    p.add_argument("--val-data", default=None, help="verl: the validation benchmark JSONL (default: the workflow's "
                                                   "data/benchmarks/<grlo.verl.val_benchmark>.jsonl)")
    p.add_argument("--device-record", default=None, help="JSON file describing the device(s) used")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (native)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the checkpoints")
    p.add_argument("--dry-run", action="store_true", help="print the training command and exit")
    threads.add_argument(p)


def default_paths(cfg: dict, backbone: str) -> dict[str, str]:
    """The paths workflow/rules/train.smk passes (outputs under the mode's outdir)."""
    o = C.prefix(cfg)
    return {"prompts": f"{o}data/prompts/{backbone}/prepared.jsonl", "policy_init": f"{o}models/{backbone}",
            "reward_model": f"{o}models/{cfg['reward_model']}", "output_dir": f"{o}checkpoints/{backbone}/grlo",
            "device_record": f"{o}benchmarks/train_grlo/{backbone}.device.json",
            "val_data": f"{o}data/benchmarks/{val_benchmark(cfg)}.jsonl"}


def val_benchmark(cfg: dict) -> str:
    """The benchmark whose workflow file is the verl engine's validation set (grlo.train.verl.data)."""
    return ((cfg.get("grlo") or {}).get("verl") or {}).get("val_benchmark", "math500")


def engine_of(cfg: dict, override: str | None = None, source: str = "config") -> str:
    e = override or (cfg.get("grlo") or {}).get("engine", "native")
    if e not in ENGINES:
        raise GrloError(f"unknown engine {e!r} (allowed: verl, native)", path=source, field="grlo.engine")
    return e


def run(args) -> int:
    cfg = C.load(args.config)
    source = ", ".join(map(str, args.config))
    args.fresh = bool(args.fresh or C.get(cfg, "grlo.fresh"))  # the config key reaches both engines (rules pass no flag)
    threads.apply(getattr(args, "threads", None), torch_here=False)
    for k, v in default_paths(cfg, args.backbone).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if engine_of(cfg, args.engine, source) == "native":
        return run_native(args)
    return run_verl(cfg, args, source)


# ------------------------------------------------------------------------------------------------------------ native
def run_native(args) -> int:
    from grlo.train import ppo  # heavy: torch

    if args.dry_run:
        from grlo.train.batching import grlo_section  # heavy: torch

        g = grlo_section(C.load(args.config))
        n = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1))
        print(" \\\n    ".join(ppo.launch_command(n, ppo._argv_of(args))))
        return 0
    return ppo.run(args)


# -------------------------------------------------------------------------------------------------------------- verl
def count_prompts(cfg: dict, prompts: str) -> tuple[int, str]:
    """Usable prompts: the prepared file's rows; before it exists, its stats, else the pinned prompt file's count."""
    p = Path(prompts)
    if p.exists():
        with open(p, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip()), str(p)
    stats = p.with_name("stats.json")
    if stats.exists():
        return int(json.loads(stats.read_text(encoding="utf-8"))["count"]), str(stats)
    sha = C.get(cfg, "prompts.sha256")
    pinned = None if C.get(cfg, "prompts.path") else C.pinned_prompt_count(sha)
    if pinned is None:
        raise GrloError("the prompt count is known only once the prompts are prepared (prompts.path is your own file "
                        "or prompts.sha256 names no pinned file): run the workflow up to prepare_prompts first",
                        path=prompts)
    return pinned, f"not prepared yet: the pinned file's {pinned} rows (sha256 {sha[:12]}..., grlo/registry/prompts.yaml)"


def verl_batch(g: dict, n_prompts: int, source: str) -> dict:
    """Batch sizes for verl: the shared adaptation rule (grlo.train.batching.resolve_batch_sizes), rounding the
    mini-batch to what verl's workers accept: per GPU a multiple of both micro-batch sizes."""
    from grlo.train.batching import resolve_batch_sizes  # heavy: torch

    n_gpus = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1))
    micro = math.lcm(int(g["actor"]["ppo_micro_batch_size_per_gpu"]), int(g["critic"]["ppo_micro_batch_size_per_gpu"]))
    return resolve_batch_sizes(g, n_prompts, n_gpus * micro, source)


def verl_plan(cfg: dict, args, source: str, attempt: int | None = None) -> dict:
    from grlo.train.batching import grlo_section, total_steps  # heavy: torch
    g = grlo_section(cfg)
    out = Path(args.output_dir)
    logs = out / "verl" / "logs"
    attempt = attempt or M.next_attempt(logs)
    metrics_log, reward_log = M.attempt_paths(logs, attempt)
    n_prompts, counted_from = count_prompts(cfg, args.prompts)
    batch = verl_batch(g, n_prompts, source)
    paths = O.Paths(train_file=str(out / "verl" / "data" / "train.parquet"),
                    val_file=str(out / "verl" / "data" / "val.parquet"), policy_init=args.policy_init,
                    reward_model=args.reward_model, checkpoints=str(out / "verl" / "checkpoints"),
                    reward_log=str(reward_log))
    seed = int(g.get("seed", cfg.get("seed", 0)))
    env = {"VERL_FILE_LOGGER_PATH": str(Path(metrics_log).resolve())}
    cpu = cpu_mod.on_cpu(cfg)
    if cpu:
        env["GRLO_SEED"] = str(seed)  # grlo.train.verl.cpu seeds each Ray worker before verl builds its models
    ovr = O.build_overrides(g, args.backbone, paths, batch, seed, source, cpu=cpu, env=env)
    python = "python3" if getattr(args, "dry_run", False) else launch.verl_python()  # dry run: the image's
    return {"g": g, "overrides": ovr, "cmd": O.main_ppo_command(ovr, python), "paths": paths,
            "batch": batch, "n_prompts": n_prompts, "counted_from": counted_from, "seed": seed, "attempt": attempt,
            "env": env, "logs": logs, "cpu": cpu,
            "total_steps": total_steps(g, n_prompts, batch["train_batch_size"]),
            "nnodes": int(g.get("nnodes", 1)), "gpus_per_node": int(g.get("n_gpus_per_node", 1))}


def run_verl(cfg: dict, args, source: str) -> int:
    if getattr(args, "fresh", False) and not args.dry_run:  # start over: verl's checkpoints and logs go
        for d in ("checkpoints", "logs"):
            shutil.rmtree(Path(args.output_dir) / "verl" / d, ignore_errors=True)
    ppo_log = logging.getLogger("grlo.train.ppo")
    level = ppo_log.level
    if args.dry_run:  # stdout is the command: the batch adaptation is a comment line below, not a log line
        ppo_log.setLevel(logging.ERROR)
    try:
        p = verl_plan(cfg, args, source)
    finally:
        ppo_log.setLevel(level)  # an in-process caller's later training logs its lines again
    v = O.verl_section(p["g"])
    if args.dry_run:
        print(f"# engine: verl {O.VERL_VERSION}; train.sh: {O.TRAIN_SH_SOURCE}")
        print(f"# prompts: {p['n_prompts']} ({p['counted_from']}); steps: {p['total_steps']}")
        if p["batch"]["adapted"]:
            print("# batch adapted (grlo.adapt_batch_size): " + ", ".join(
                f"{k} {a} -> {b}" for k, (a, b) in p["batch"]["adapted"].items()))
        print("# env: " + " ".join(f"{k}={val}" for k, val in p["env"].items()))
        if p["nnodes"] > 1:
            image = (cfg.get("container") or {}).get("verl_image")
            print(launch.render_plan(launch.plan(p["nnodes"], p["gpus_per_node"], int(v.get("ray_port", 6379)),
                                                 "$HEAD_NODE", image, head_ip="$HEAD_IP"), p["cmd"]))
        print(O.render(p["cmd"], p["overrides"]))
        return 0
    return execute(cfg, args, p, v)


def execute(cfg: dict, args, p: dict, v: dict) -> int:
    for what, path in (("prompts", args.prompts), ("policy", args.policy_init), ("reward model", args.reward_model),
                       ("validation data", args.val_data)):
        if not Path(path).exists():
            raise GrloError(f"{what} not found", path=path)
    if args.device_record:
        record_device(args.device_record, p["gpus_per_node"])
    counts = data.convert(args.prompts, args.val_data, p["paths"].train_file, p["paths"].val_file)
    log.info("verl data: %s; attempt %d; command:\n%s", counts, p["attempt"], " ".join(p["cmd"]))
    Path(p["logs"]).mkdir(parents=True, exist_ok=True)
    n_batches = p["n_prompts"] // p["batch"]["train_batch_size"]
    verl_run.train_and_finish(
        p, int(v.get("ray_port", 6379)), str(Path(args.output_dir).resolve() / "verl"),
        lambda: M.write_metrics(p["logs"], Path(args.output_dir) / "metrics.jsonl", n_batches))
    manifest = {"stage": "grlo", "backbone": args.backbone, "batch_sizes": p["batch"], "grlo_config": p["g"],
                "planned_steps": p["total_steps"], "cpu": p["cpu"], "verl_overrides": [o.arg() for o in p["overrides"]],
                "deviations": {o.key: o.deviation for o in p["overrides"] if o.deviation}}
    finalize.finalize(p["paths"].checkpoints, args.output_dir, args.policy_init, manifest)
    print(f"verl training finished: {Path(args.output_dir) / 'final'}", file=sys.stderr)
    return 0
