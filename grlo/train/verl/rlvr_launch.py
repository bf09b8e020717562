"""`grlo train-rlvr` on verl (`rlvr.engine: verl`): GRPO with General-Reasoner's launcher settings
(grlo.train.verl.rlvr_overrides), our General-Reasoner reward as verl's reward function (grlo.train.verl.rlvr_reward),
the stage's prompts from `rlvr_data` as verl parquet, then the GRLO engine's tail: verl's file-logger metrics ->
metrics.jsonl (grlo.train.verl.metrics), the last checkpoint merged into final/ (grlo.train.verl.finalize).

Layout under --output-dir: verl/data/train.parquet, verl/checkpoints/ (verl's global_step_N, resumed automatically),
verl/logs/attempt-N.{metrics,reward}.jsonl (one pair per launch), verl/run_fingerprint.json; final/ and metrics.jsonl.
Resume: rerunning continues from verl's last checkpoint when the run fingerprint (recipe less the step budget, init,
data, reward, seed, code) matches; otherwise it stops naming the differing keys; `--fresh` starts over.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

from grlo import config as config_mod
from grlo.accounting import record_device
from grlo.data.rlvr_data import load_rows
from grlo.errors import GrloError
from grlo.io import write_json, write_jsonl
from grlo.train.rlvr_recipe import run_fingerprint, stage_settings, user_content
from grlo.train.verl import finalize, launch
from grlo.train.verl import metrics as M
from grlo.train.verl import overrides as O
from grlo.train.verl import rlvr_overrides as RO
from grlo.train.verl import run as verl_run
from grlo.train.verl.cpu import on_cpu
from grlo.train.verl.data import write_parquet
from grlo.train.verl.launch import verl_python

log = logging.getLogger(__name__)

# verl metric -> the TRL engine's metrics.jsonl name (both kept), so a figure reads either engine's run
TRL_NAMES = {
    "reward/score_mean": "reward_mean",
    "reward/general_reasoner_mean": "rewards/general_reasoner/mean",
    "reward/correct_mean": "rewards/correct/mean",
    "reward/no_answer_frac": "rewards/parts/no_answer_frac",
    "reward/length_penalty_mean": "rewards/parts/length_penalty_mean",
    "response_length/mean": "completion_length_mean",
    "actor/kl_loss": "kl",
    "actor/pg_loss": "loss",
    "actor/grad_norm": "grad_norm",
    "actor/entropy": "entropy",
}


def verl_row(row: dict, index: int, instruction: str | None) -> dict:
    """An rlvr_data row ({id, prompt, answer, meta}) as a verl RL row with a rule ground truth."""
    return {
        "data_source": "rlvr",
        "prompt": [{"role": "user", "content": user_content(row["prompt"], instruction)}],
        "ability": str((row.get("meta") or {}).get("category") or "general"),
        "reward_model": {"style": "rule", "ground_truth": str(row["answer"])},
        "extra_info": {"split": "train", "index": int(index), "id": str(row["id"]), "question": row["prompt"]},
    }


def count_prompts(data: str, max_prompts: int | None) -> tuple[int, str]:
    """Prompts the stage trains on: the data file's rows (or its stats.json before it exists), capped by max_prompts."""
    p = Path(data)
    if p.exists():
        with open(p, encoding="utf-8") as f:
            n, src = sum(1 for line in f if line.strip()), str(p)
    elif p.with_name("stats.json").exists():
        n, src = int(json.loads(p.with_name("stats.json").read_text(encoding="utf-8"))["count"]), str(
            p.with_name("stats.json"))
    elif max_prompts:
        return int(max_prompts), "rlvr.stages.<stage>.max_prompts (the data is not downloaded yet)"
    else:
        raise GrloError("the prompt count is known once the RLVR data is downloaded: run download_rlvr_data first",
                        path=data)
    return (min(n, int(max_prompts)) if max_prompts else n), src


def plan(cfg: dict, args) -> dict:
    t = stage_settings(cfg, args.stage)
    rlvr = json.loads(json.dumps(cfg["rlvr"]))  # a copy: --verifier fills verifier_path
    if getattr(args, "verifier", None):
        rlvr.setdefault("reward", {})["verifier_path"] = args.verifier
    out = Path(args.output_dir)
    logs = out / "verl" / "logs"
    attempt = M.next_attempt(logs)
    metrics_log, reward_log = M.attempt_paths(logs, attempt)
    paths = RO.Paths(train_file=str(out / "verl" / "data" / "train.parquet"), policy_init=str(args.init),
                     checkpoints=str(out / "verl" / "checkpoints"), reward_log=str(reward_log))
    seed = int(cfg.get("seed", 0))
    cpu = on_cpu(cfg)
    env = {"VERL_FILE_LOGGER_PATH": str(Path(metrics_log).resolve())}
    ovr = RO.build_overrides(rlvr, t, args.backbone, args.stage, paths, seed, cpu=cpu, env=env)
    n_prompts, counted_from = count_prompts(args.data, t.get("max_prompts"))
    batch = int(t["batch_prompts"])
    if n_prompts < batch:
        raise GrloError(f"{n_prompts} prompts ({counted_from}), fewer than one batch of {batch}",
                        field="rlvr.train.batch_prompts")
    steps = RO.verl_steps(t)
    total = steps["total_training_steps"] or int(float(t.get("epochs", 1)) * (n_prompts // batch))
    v = rlvr.get("verl") or {}
    python = "python3" if getattr(args, "dry_run", False) else verl_python()  # dry run: the image's
    return {"t": t, "rlvr": rlvr, "overrides": ovr, "cmd": O.main_ppo_command(RO.passed(ovr), python),
            "paths": paths, "n_prompts": n_prompts, "counted_from": counted_from, "total_steps": total,
            "steps": steps, "attempt": attempt, "logs": logs, "seed": seed, "env": env, "cpu": cpu,
            "nnodes": int(v.get("nnodes", 1)), "gpus_per_node": int(rlvr.get("gpus", 1) or 1),
            "ray_port": int(v.get("ray_port", 6379))}


def dry_run(cfg: dict, args) -> int:
    p = plan(cfg, args)
    print(f"# engine: verl {O.VERL_VERSION}{' on CPU (grlo.train.verl.cpu)' if p['cpu'] else ''}; General-Reasoner: "
          f"{RO.GR_SOURCE}")
    print(f"# stage {args.stage}: {p['n_prompts']} prompts ({p['counted_from']}); {p['total_steps']} verl steps of "
          f"{p['t']['batch_prompts']} prompts x {p['t']['num_generations']} rollouts, "
          f"{p['steps']['optimizer_steps_per_verl_step']} optimizer steps each")
    print("# env: " + " ".join(f"{k}={val}" for k, val in p["env"].items()))
    print(O.render(p["cmd"], p["overrides"]))
    return 0


def prepare_data(data: str, train_out: str, max_prompts: int | None, instruction: str | None) -> int:
    rows = load_rows(data)
    if max_prompts:
        rows = rows[: int(max_prompts)]
    write_parquet([verl_row(r, i, instruction) for i, r in enumerate(rows)], train_out)
    return len(rows)


def check_resume(out: Path, p: dict, args) -> None:
    """--fresh removes verl's checkpoints and logs; otherwise checkpoints of a run with another fingerprint stop the
    run naming the differing keys. Then this run's fingerprint is recorded."""
    from grlo.train import checkpoint as ckpt  # heavy: torch
    vdir = out / "verl"
    if getattr(args, "fresh", False):
        for d in ("checkpoints", "logs"):
            shutil.rmtree(vdir / d, ignore_errors=True)
    fp = run_fingerprint(p["t"], str(args.init), str(args.data), args.stage, p["rlvr"].get("reward"), p["seed"])
    fp["engine"] = "verl"
    fp_path = vdir / "run_fingerprint.json"
    existing = sorted(Path(p["paths"].checkpoints).glob("global_step_*"))
    if existing:
        old = json.loads(fp_path.read_text()) if fp_path.exists() else None
        ckpt.check_fingerprint(old, fp, str(existing[-1]), fresh_key="rlvr.fresh")
    vdir.mkdir(parents=True, exist_ok=True)
    write_json(fp_path, fp)


def write_metrics(logs: Path, out_path: Path, batches_per_epoch: int) -> int:
    """verl's logs -> metrics.jsonl (the GRLO engine's conversion) with the TRL engine's names added."""
    rows = M.convert_logs(logs, batches_per_epoch)
    for r in rows:
        r.update({trl: r[k] for k, trl in TRL_NAMES.items() if k in r and trl not in r})
    return write_jsonl(str(out_path), rows)


def execute(cfg: dict, args, run_verl=None) -> int:
    """Run verl for one RLVR stage; `run_verl(cmd, env, nnodes, gpus_per_node, port, image)` starts main_ppo
    (default grlo.train.verl.launch.run_verl; the CPU rehearsal passes its own)."""
    if not (Path(args.init) / "config.json").exists():
        raise GrloError("not an HF model directory (no config.json)", path=str(args.init), field="--init")
    p = plan(cfg, args)
    out = Path(args.output_dir)
    check_resume(out, p, args)
    n = prepare_data(args.data, p["paths"].train_file, p["t"].get("max_prompts"),
                     config_mod.get(cfg, "rlvr.data.instruction"))
    log.info("verl RLVR data: %d prompts; attempt %d; command:\n%s", n, p["attempt"], " ".join(p["cmd"]))
    Path(p["logs"]).mkdir(parents=True, exist_ok=True)
    verl_run.train_and_finish(
        p, p["ray_port"], str(out.resolve() / "verl"),
        lambda: write_metrics(p["logs"], out / "metrics.jsonl", n // int(p["t"]["batch_prompts"])), run=run_verl)
    manifest = {"stage": args.stage, "backbone": args.backbone, "init": str(args.init), "data": str(args.data),
                "prompts": n, "planned_steps": p["total_steps"], "recipe": p["t"], "reward": p["rlvr"].get("reward"),
                "cpu": p["cpu"],
                "verl_overrides": [o.arg() for o in p["overrides"] if o.value != "" or not o.deviation],
                "deviations": {o.key: o.deviation for o in p["overrides"] if o.deviation},
                "provenance": "recipe: General-Reasoner's launcher (inferred baseline, results/README.md)"}
    finalize.finalize(p["paths"].checkpoints, out, str(args.init), manifest)
    if not p["t"].get("keep_checkpoints", False):
        shutil.rmtree(p["paths"].checkpoints, ignore_errors=True)
    if args.device_record:  # one GPU per process on each node; a CPU run is charged none
        record_device(args.device_record, 0 if p["cpu"] else p["gpus_per_node"])
    print(f"verl RLVR training finished: {out / 'final'}", file=sys.stderr)
    return 0
