"""`grlo rehearse`: the paper's GRLO launch, rehearsed on this machine before GPU hours are spent.

The config's exact verl override set (every train.sh key, every declared deviation, grlo.train.verl.overrides) with
only sizes shrunk (REHEARSAL_SIZES: tiny stand-in models of the same kind, Qwen3 policy with a ChatML tokenizer and a
reward model with its own Llama-3-style chat template, grlo.models.tiny; 4 prompts a batch, 2 steps, short
responses), run through verl's real `main_ppo` (on CPU through grlo.train.verl.cpu when no GPU is visible), in the
phases a paper run goes through:

  setup    the stand-in models, prompts (the smoke fixture, as prepared rows) and a rule-scored validation file
  train    validation, then steps; killed (SIGKILL to its process group) once the step-1 checkpoint is written and sealed
  resume   rerun: verl resumes from that checkpoint; its own log must start training at step 2 and it must finish
  merge    verl's model merger -> final/ (tokenizer, manifest), as train_grlo does
  metrics  verl's logs -> metrics.jsonl (our format), at least 2 step rows

Then, when the config trains the GRLO -> RLVR stage on verl (rlvr.engine: verl, the paper's default and the run's
largest cost), that stage's launch the same way, through the same code as `grlo train-rlvr` (grlo.train.verl.
rlvr_launch), from the GRLO phases' final/ (the tied-embedding merge the stage starts from) and with only sizes shrunk
(RLVR_REHEARSAL_SIZES; prompts from the seeded RLVR fixture); its outputs go to DIR/grlo-rlvr/:

  rlvr-train   GRPO steps, killed once the step-1 checkpoint is written and sealed
  rlvr-resume  rerun: resumes (verl's log starts training at step 2), finishes, merges grlo-rlvr/final/, writes
               grlo-rlvr/metrics.jsonl (at least 2 step rows)

DIR/rehearsal.json: one entry per phase (ok, seconds, cause: the one line that says why it failed). Exit 0 only if
every phase passed. --no-rlvr rehearses the GRLO launch alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from grlo import config as C
from grlo.config import deep_merge
from grlo.data.rlvr_data import generate_fixture
from grlo.errors import GrloError
from grlo.io import iter_jsonl, write_json, write_jsonl
from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
from grlo.train import rlvr as rlvr_engine
from grlo.train import train_grlo as T
from grlo.train.verl import data, finalize, rlvr_launch, seal, session
from grlo.train.verl import metrics as M

REHEARSAL_SIZES = {
    "train_batch_size": 4, "max_prompt_length": 256, "max_response_length": 16, "total_training_steps": 2,
    "test_freq": 2, "n_gpus_per_node": 1, "nnodes": 1, "verl": {"save_freq": 1},
    "actor": {"ppo_mini_batch_size": 4, "ppo_micro_batch_size_per_gpu": 2},
    "critic": {"ppo_mini_batch_size": 4, "ppo_micro_batch_size_per_gpu": 2},
    "rollout": {"log_prob_micro_batch_size_per_gpu": 2},
}
# The GRLO -> RLVR stage: GRPO groups of 2, 2 prompts a batch, 2 steps; the paper's learning rate, KL (and so its
# reference model), clipping, entropy, loss and reward settings are kept.
RLVR_REHEARSAL_SIZES = {
    "gpus": 1, "verl": {"nnodes": 1},
    "train": {"num_generations": 2, "batch_prompts": 2, "mini_batch_prompts": 2, "per_device_batch": 2,
              "max_completion_length": 16, "max_prompt_tokens": 128, "save_steps": 1, "max_steps": 2,
              "vllm_tensor_parallel_size": 1, "keep_checkpoints": True},
    "stages": {"grlo-rlvr": {"max_prompts": 8, "max_steps": 2}},
}
RLVR_STAGE = "grlo-rlvr"
N_PROMPTS, N_VAL = 8, 4
KILL_AFTER_STEP = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# an exception line, also from a Ray worker ("(TaskRunner pid=N) ...") or the interpreter itself ("/x/python: Error
# while finding module specification for 'verl.trainer.main_ppo' (ModuleNotFoundError: ...)": an image without verl)
_CAUSE = re.compile(r"^(?:\(\w+ pid=\d+\)\s*|\S*python[\d.]*: )?([A-Za-z_.]*(?:Error|Exception|Interrupt)\b.*)$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files (the paper's), deep-merged in order")
    p.add_argument("--backbone", required=True, help="registry name of the backbone the launch is for")
    p.add_argument("--output", required=True, help="directory: final/, metrics.jsonl, rehearsal.json")
    p.add_argument("--no-kill", action="store_true", help="train without the kill-and-resume phases")
    p.add_argument("--no-rlvr", action="store_true", help="rehearse the GRLO launch alone (not the GRLO -> RLVR stage)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")


def rehearsal_config(cfg: dict, seed: int | None = None) -> dict:
    """The config with only sizes shrunk (and the mode marked, so a CPU-only machine may run verl)."""
    out = deep_merge(cfg, {"grlo": REHEARSAL_SIZES, "rlvr": RLVR_REHEARSAL_SIZES})
    out["mode"] = "rehearsal"
    if seed is not None:
        out["seed"] = int(seed)
    return out


def cause(log_path: Path) -> str:
    """The one line that says why a verl run died: the last exception line of its log."""
    if not log_path.exists():
        return "no log"
    last = None
    for line in log_path.read_text(errors="replace").splitlines():
        m = _CAUSE.match(_ANSI.sub("", line).strip())
        if m and not m.group(1).startswith("Error executing job"):
            last = m.group(1)
    return (last or "exited without an exception line; see " + str(log_path))[:400]


class Phases:
    def __init__(self, path: Path):
        self.path, self.rows = path, []

    def run(self, name: str, fn):
        t0 = time.time()
        try:
            result = fn()
            self.rows.append({"phase": name, "ok": True, "seconds": round(time.time() - t0, 1), "cause": None})
            return result
        except Exception as e:  # noqa: BLE001 (any failure of a phase is recorded, in one line)
            line = str(e).splitlines()[0] if str(e) else ""
            why = line if isinstance(e, GrloError) else f"{type(e).__name__}: {line}"
            self.rows.append({"phase": name, "ok": False, "seconds": round(time.time() - t0, 1), "cause": why})
            raise GrloError(why) from e
        finally:
            write_json(self.path, {"ok": all(r["ok"] for r in self.rows), "phases": self.rows})


def setup(out: Path, cfg: dict) -> SimpleNamespace:
    models = out / "models"
    seed = int(cfg.get("seed", 0))
    policy = build_tiny_policy(models / "policy", seed=seed)
    rm = build_tiny_reward_model(models / "reward_model", seed=seed)
    fixtures = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    prompts = [row for _, row in iter_jsonl(str(fixtures / "grlo_prompts_smoke.jsonl"))][:N_PROMPTS]
    val = [{"prompt": r["problem"], "answer": r["answer"]}
           for _, r in iter_jsonl(str(fixtures / "math_smoke.jsonl"))][:N_VAL]
    write_jsonl(str(out / "data" / "prepared.jsonl"), prompts)
    write_jsonl(str(out / "data" / "val.jsonl"), val)
    return SimpleNamespace(prompts=str(out / "data" / "prepared.jsonl"), val_data=str(out / "data" / "val.jsonl"),
                           policy_init=str(policy), reward_model=str(rm), output_dir=str(out), device_record=None,
                           fresh=False, dry_run=False)


def watch(cmd: list[str], env: dict, cwd: str, log_path: Path, checkpoints: str, kill_after: int | None) -> int:
    """Run one main_ppo (its output to log_path); kill_after: SIGKILL its process group once that step's checkpoint
    is sealed, and return -SIGKILL."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    Path(cwd).mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = session.start(cmd, {**os.environ, **env}, cwd=cwd, stdout=log)
        try:
            while proc.poll() is None:
                if kill_after is not None and (seal.sealed_step(checkpoints) or 0) >= kill_after:
                    session.stop(proc.pid, 0)  # a crash: every process of the run (Ray's workers too) at once
                    proc.wait()
                    return -signal.SIGKILL
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                session.stop(proc.pid, 0)
                proc.wait()
        session.stop(proc.pid)  # what main_ppo left behind
    return proc.returncode


def launch(cfg: dict, args, source: str, kill_after: int | None) -> tuple[dict, int, Path]:
    """One GRLO main_ppo attempt; kill_after: SIGKILL its process group once that step's checkpoint exists."""
    p = T.verl_plan(cfg, args, source)
    data.convert(args.prompts, args.val_data, p["paths"].train_file, p["paths"].val_file)
    log_path = Path(p["logs"]) / f"attempt-{p['attempt']}.main_ppo.log"
    seal.check(p["paths"].checkpoints)  # as the verl run step does before a resume (grlo.train.verl.run)
    rc = watch(p["cmd"], p["env"], str(Path(args.output_dir).resolve() / "verl"), log_path, p["paths"].checkpoints,
               kill_after)
    return p, rc, log_path


def first_training_step(metrics_log: Path) -> int | None:
    steps = [int(r["step"]) for r in M.read_log(metrics_log) if M.is_training(r.get("data") or {})]
    return min(steps) if steps else None


def require_training_rows(path: Path) -> None:
    """Our metrics.jsonl must hold at least 2 training-step rows (those with an epoch)."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if sum(1 for r in rows if "epoch" in r) < 2:
        raise GrloError(f"metrics.jsonl has {len(rows)} rows, fewer than 2 training steps", path=str(path))


def rehearse(cfg: dict, backbone: str, out: Path, source: str, kill: bool = True, rlvr: bool = True) -> dict:
    """rlvr: also the GRLO -> RLVR stage's phases, when the config trains that stage on verl."""
    rlvr = rlvr and trains_rlvr_on_verl(cfg)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("verl", "final", "metrics.jsonl", "rehearsal.json", RLVR_STAGE):  # a rehearsal starts from nothing
        shutil.rmtree(out / old, ignore_errors=True) if (out / old).is_dir() else (out / old).unlink(missing_ok=True)
    phases = Phases(out / "rehearsal.json")
    args = phases.run("setup", lambda: setup(out, cfg))
    args.backbone = backbone
    state = {}

    def train():
        p, rc, log_path = launch(cfg, args, source, KILL_AFTER_STEP if kill else None)
        state["plan"] = p
        if kill and rc != -signal.SIGKILL:
            raise GrloError(f"main_ppo ended (exit {rc}) before its step-{KILL_AFTER_STEP} checkpoint: "
                            f"{cause(log_path)}", path=str(log_path))
        if not kill and rc != 0:
            raise GrloError(f"main_ppo exited with {rc}: {cause(log_path)}", path=str(log_path))

    def resume():
        p, rc, log_path = launch(cfg, args, source, None)
        state["plan"] = p
        if rc != 0:
            raise GrloError(f"main_ppo exited with {rc} after the resume: {cause(log_path)}", path=str(log_path))
        metrics_log, _ = M.attempt_paths(p["logs"], p["attempt"])
        first = first_training_step(metrics_log)
        if first != KILL_AFTER_STEP + 1:
            raise GrloError(f"the resumed run's first training step is {first}, not {KILL_AFTER_STEP + 1}: verl did "
                            "not resume from the checkpoint", path=str(metrics_log))

    def merge():
        p = state["plan"]
        step = finalize.mark_finished(p["paths"].checkpoints, p["total_steps"])
        manifest = {"stage": "grlo-rehearsal", "backbone": backbone, "stand_ins": True, "batch_sizes": p["batch"],
                    "verl_overrides": [o.arg() for o in p["overrides"]], "cpu": p["cpu"],
                    "deviations": {o.key: o.deviation for o in p["overrides"] if o.deviation}, "final_step": step}
        finalize.finalize(p["paths"].checkpoints, out, args.policy_init, manifest)

    def metrics():
        p = state["plan"]
        M.write_metrics(p["logs"], out / "metrics.jsonl", p["n_prompts"] // p["batch"]["train_batch_size"])
        require_training_rows(out / "metrics.jsonl")

    phases.run("train", train)
    if kill:
        phases.run("resume", resume)
    phases.run("merge", merge)
    phases.run("metrics", metrics)
    if rlvr:
        rehearse_rlvr(cfg, backbone, out, phases, kill)
    return json.loads((out / "rehearsal.json").read_text())


def trains_rlvr_on_verl(cfg: dict) -> bool:
    """The GRLO -> RLVR stage (table 4's row, trained in every mode) runs on verl (rlvr.engine, as train-rlvr reads
    it)."""
    return rlvr_engine.engine_of(cfg) == "verl"


def rehearse_rlvr(cfg: dict, backbone: str, out: Path, phases: Phases, kill: bool = True) -> None:
    """The GRLO -> RLVR stage through rlvr_launch.execute (what `grlo train-rlvr` runs), from out/final."""
    stage_out = out / RLVR_STAGE  # emptied by rehearse() with the rest of DIR
    n = int(RLVR_REHEARSAL_SIZES["stages"][RLVR_STAGE]["max_prompts"])
    rows = generate_fixture(n, seed=int(cfg.get("seed", 0)))
    write_jsonl(str(stage_out / "data" / "train.jsonl"), rows)
    args = SimpleNamespace(init=str(out / "final"), data=str(stage_out / "data" / "train.jsonl"), stage=RLVR_STAGE,
                           backbone=backbone, output_dir=str(stage_out), fresh=False, dry_run=False, verifier=None,
                           device_record=None)
    checkpoints = str(stage_out / "verl" / "checkpoints")
    attempts = []  # (main_ppo's log, exit status, killed by us) of each launch

    def launcher(kill_after):
        def run(cmd, env, nnodes, gpus_per_node, port, image, cpu=False, cwd=None):
            # attempt-N.metrics.jsonl is the file logger's path (rlvr_launch.plan); main_ppo's output goes beside it
            log_path = Path(env["VERL_FILE_LOGGER_PATH"].replace(".metrics.jsonl", ".main_ppo.log"))
            rc = watch(cmd, env, cwd or str(stage_out / "verl"), log_path, checkpoints, kill_after)
            attempts.append((log_path, rc, kill_after is not None and rc == -signal.SIGKILL))
            return rc
        return run

    def explained(e: GrloError) -> GrloError:
        """rlvr_launch's error, with the failed main_ppo's own last exception line when one failed."""
        if attempts and attempts[-1][1] != 0 and not attempts[-1][2]:
            log_path, rc, _ = attempts[-1]
            return GrloError(f"main_ppo exited with {rc}: {cause(log_path)}", path=str(log_path))
        return e

    def train():
        try:
            rlvr_launch.execute(cfg, args, run_verl=launcher(KILL_AFTER_STEP))
        except GrloError as e:
            if attempts and attempts[-1][2]:
                return
            raise explained(e) from e
        raise GrloError(f"the GRLO -> RLVR run finished before its step-{KILL_AFTER_STEP} checkpoint was sealed",
                        path=checkpoints)

    def resume():
        try:
            rlvr_launch.execute(cfg, args, run_verl=launcher(None))
        except GrloError as e:
            raise explained(e) from e
        logs = stage_out / "verl" / "logs"
        attempt = M.next_attempt(logs) - 1
        first = first_training_step(M.attempt_paths(logs, attempt)[0])
        if kill and first != KILL_AFTER_STEP + 1:
            raise GrloError(f"the resumed GRLO -> RLVR run's first training step is {first}, not "
                            f"{KILL_AFTER_STEP + 1}: verl did not resume from the checkpoint", path=str(logs))
        require_training_rows(stage_out / "metrics.jsonl")

    if kill:
        phases.run("rlvr-train", train)
        phases.run("rlvr-resume", resume)
    else:
        phases.run("rlvr-train", resume)


def run(args) -> int:
    cfg = rehearsal_config(C.load(args.config), args.seed)
    source = ", ".join(map(str, args.config))
    t0 = time.time()
    try:
        rehearse(cfg, args.backbone, Path(args.output), source, kill=not args.no_kill, rlvr=not args.no_rlvr)
    except GrloError:
        rec = json.loads((Path(args.output) / "rehearsal.json").read_text())
        failed = next(r for r in rec["phases"] if not r["ok"])
        print(f"grlo rehearse: phase {failed['phase']} failed: {failed['cause']}", file=sys.stderr)
        return 1
    out = Path(args.output)
    rlvr = f", {out / RLVR_STAGE / 'final'}" if (out / RLVR_STAGE / "final").is_dir() else ""
    print(f"grlo rehearse: every phase passed in {time.time() - t0:.0f} s: {out / 'final'}{rlvr}, "
          f"{out / 'metrics.jsonl'}, {out / 'rehearsal.json'}", file=sys.stderr)
    return 0
