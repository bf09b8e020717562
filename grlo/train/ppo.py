"""`grlo train-grlo`: GRLO's PPO with a GAE critic and a reward model that has its own tokenizer.

One step reads top to bottom (see `PPOTrainer.step`):
  rollout (sample one response per prompt from the current policy)
  -> reward (decode, re-template with the RM's own chat template, score; style_mix)
  -> values (critic, per response token) and old log-probs (actor)
  -> advantages (GAE, verl semantics, whitened over response tokens)
  -> critic update (clipped value loss), then actor update (dual-clip PPO loss), mini/micro-batches.

Settings come from the `grlo:` config section, whose defaults mirror the official train.sh and verl's defaults
(see config/config.yaml). Single process on CPU or one GPU; several GPUs with `torchrun --nproc_per_node=N` (FSDP2,
each decoder layer sharded; see `launch_command`).

The engine's parts, each its own module: batch sizing and data order (`batching`), prompts and batch tensors
(`prompts`), rollout engines HF + vLLM (`rollout`), the update phase (`ppo_update`), distributed helpers
(`distributed`), run logging (`run_log`), checkpoints (`checkpoint`). This module holds the trainer (one step, the
loop) and the CLI; it re-exports the helpers other code imports from `grlo.train.ppo`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from grlo import config as config_mod
from grlo.accounting import record_device
from grlo.errors import GrloError
from grlo.io import atomic_dir, library_versions, write_json, write_jsonl
from grlo.models.local import check_model_dir
from grlo.rewards.reward_model import RewardScorer, rm_response_text
from grlo.rewards.style import StyleMix
from grlo.train import checkpoint as ckpt
from grlo.train.advantages import explained_variance, gae, masked_mean, token_level_rewards
from grlo.train.batching import batch_indices, epoch_order, grlo_section, req, resolve_batch_sizes, total_steps  # noqa: F401
from grlo.device import empty_cuda_cache
from grlo.train.checkpoint import full_model_state
from grlo.train.distributed import dist_on, global_whiten, rank, reduce_row, world_size  # noqa: F401
from grlo.train.ppo_update import (UpdateSettings, _autocast, _split, fsdp2_wrap, make_optimizer, micro_batch,  # noqa: F401
                                   pad_response, sequence_logprobs, sequence_values, update_actor, update_critic)
from grlo.train.prompts import PromptSet, chat_ids, left_pad, load_prompts, response_mask_from  # noqa: F401
from grlo.train.rollout import HFRollout, VLLMRollout, eos_token_ids, vllm_settings  # noqa: F401
from grlo.train.run_log import Loggers, append_jsonl, progress_bar
from grlo.train.stopping import StopOnSignal, TrainingInterrupted

log = logging.getLogger("grlo.train.ppo")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


DETERMINISTIC_METRICS_EXCLUDE = ("time/", "perf/", "gpu/")


@dataclass
class RunState:
    step: int = 0                   # optimizer-step batches completed
    metrics: list[dict] = field(default_factory=list)


# the modules whose code computes the numbers of a step: a resume across a change to one of them is refused
FINGERPRINT_MODULES = ("grlo.train.ppo", "grlo.train.ppo_update", "grlo.train.advantages", "grlo.train.losses",
                       "grlo.train.batching", "grlo.train.prompts", "grlo.train.rollout", "grlo.train.distributed",
                       "grlo.rewards.reward_model", "grlo.rewards.style", "grlo.models.local")


def actor_updates(steps_done: int, critic_warmup: int) -> int:
    """Actor updates in the first `steps_done` steps. verl counts global steps from 1 and updates the actor when
    critic_warmup <= global_step, so critic_warmup k skips the actor on the first k - 1 steps."""
    return max(0, steps_done - max(0, critic_warmup - 1))


def lr_warmup_factor(updates_done: int, warmup_steps: int) -> float:
    """verl get_constant_schedule_with_warmup: updates_done / warmup_steps during the warm-up, then 1."""
    return 1.0 if updates_done >= warmup_steps else updates_done / max(1, warmup_steps)


class PPOTrainer:
    def __init__(self, cfg: dict, backbone: str, prompts_path: str, policy_init: str, reward_model: str,
                 output_dir: str, config_source: str = "config"):
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

        self.cfg, self.g = cfg, grlo_section(cfg)
        self.backbone, self.output_dir = backbone, Path(output_dir)
        self.source = config_source
        g = self.g
        self.seed = int(g.get("seed", cfg.get("seed", 0)))
        self.device = _pick_device(g)
        dtype_name = g.get("param_dtype", "float32")
        self.param_dtype = _DTYPES[dtype_name]
        compute = g.get("compute_dtype")
        self.autocast_dtype = _DTYPES[compute] if (compute and self.device.type == "cuda"
                                                   and _DTYPES[compute] != self.param_dtype) else None

        torch.manual_seed(self.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(check_model_dir(policy_init, "policy model", tokenizer=True))
        if self.tokenizer.pad_token_id is None:
            raise GrloError("the policy tokenizer has no pad token", path=policy_init, field="tokenizer")
        self.prompts = load_prompts(prompts_path, self.tokenizer, int(req(g, "max_prompt_length")),
                                    bool(g.get("filter_overlong_prompts", True)))
        if self.prompts.dropped_overlong:
            log.info("filtered %d prompts longer than max_prompt_length", self.prompts.dropped_overlong)
        self.n_procs = world_size()
        self.bs = resolve_batch_sizes(g, len(self.prompts.ids), self.n_procs, config_source)
        self.total_steps = total_steps(g, len(self.prompts.ids), self.bs["train_batch_size"])

        gc_on = bool(req(g, "actor.gradient_checkpointing"))
        self.actor = AutoModelForCausalLM.from_pretrained(policy_init, dtype=self.param_dtype).to(self.device)
        torch.manual_seed(self.seed + 1)  # the critic's fresh value head
        self.critic = load_critic(policy_init, self.param_dtype).to(self.device)
        for m, on in ((self.actor, gc_on), (self.critic, bool(req(g, "critic.gradient_checkpointing")))):
            m.config.use_cache = False
            if on:
                m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.n_procs > 1:  # pragma: no cover - multi-GPU
            fsdp2_wrap(self.actor, self.autocast_dtype)
            fsdp2_wrap(self.critic, self.autocast_dtype)
        a, c = g["actor"], g["critic"]
        self.actor_opt = make_optimizer(self.actor, float(a["lr"]), a.get("betas", (0.9, 0.999)),
                                        float(a.get("weight_decay", 0.01)))
        self.critic_opt = make_optimizer(self.critic, float(c["lr"]), c.get("betas", (0.9, 0.999)),
                                         float(c.get("weight_decay", 0.01)))
        r = g["rollout"]
        self.sampling = {"temperature": float(r["temperature"]), "top_p": float(r["top_p"]),
                         "top_k": r.get("top_k", -1)}
        self.max_response_length = int(req(g, "max_response_length"))
        if r.get("engine", "hf") == "vllm":  # pragma: no cover - GPU only
            if self.device.type != "cuda" or importlib.util.find_spec("vllm") is None:
                raise GrloError("rollout engine vllm needs a GPU and the vllm package (the GPU image); on CPU set "
                                "grlo.rollout.engine: hf", path=config_source, field="grlo.rollout.engine")
            llm_kw, samp_kw = vllm_settings(g, policy_init, self.seed, self.n_procs, rank())
            self.rollout = VLLMRollout(llm_kw, samp_kw, self.seed + rank())
        else:
            self.rollout = HFRollout(self.actor, self.tokenizer, self.sampling, self.max_response_length,
                                     int(r.get("batch_size", 64)))
        rw = g["reward"]
        # verl: the RM config's max_length, else the rollout width (prompt + response = 4096 in train.sh)
        rm_max_length = rw.get("max_length") or int(req(g, "max_prompt_length")) + self.max_response_length
        self.reward = RewardScorer(reward_model, device=self.device, batch_size=int(rw.get("micro_batch_size", 8)),
                                   max_length=rm_max_length, offload=bool(rw.get("param_offload", False)),
                                   dtype=_DTYPES[rw.get("dtype", dtype_name)])
        self.style = StyleMix.from_config(rw.get("style_mix", {}), self.max_response_length)
        self.upd_actor = UpdateSettings(
            mini_batch_size=self.bs["actor_mini"] // self.n_procs,
            micro_batch_size=int(a["ppo_micro_batch_size_per_gpu"]), epochs=int(a.get("ppo_epochs", 1)),
            grad_clip=float(a.get("grad_clip", 1.0)), clip_ratio_low=float(a.get("clip_ratio_low", a["clip_ratio"])),
            clip_ratio_high=float(a.get("clip_ratio_high", a["clip_ratio"])),
            clip_ratio_c=float(a.get("clip_ratio_c", 3.0)), entropy_coeff=float(a.get("entropy_coeff", 0.0)),
            loss_agg_mode=a.get("loss_agg_mode", "token-mean"), temperature=self.sampling["temperature"],
            loss_normalization=g.get("loss_agg_normalization", "micro-batch-mean"), autocast_dtype=self.autocast_dtype)
        self.upd_critic = UpdateSettings(
            mini_batch_size=self.bs["critic_mini"] // self.n_procs,
            micro_batch_size=int(c["ppo_micro_batch_size_per_gpu"]), epochs=int(c.get("ppo_epochs", 1)),
            grad_clip=float(c.get("grad_clip", 1.0)), cliprange_value=float(c.get("cliprange_value", 0.5)),
            loss_agg_mode=a.get("loss_agg_mode", "token-mean"),
            loss_normalization=g.get("loss_agg_normalization", "micro-batch-mean"), autocast_dtype=self.autocast_dtype)
        # no-grad forwards (old log-probs, values): verl's rollout.log_prob_micro_batch_size_per_gpu and critic
        # forward_micro_batch_size_per_gpu (default: the critic's ppo micro-batch)
        self.logprob_micro = int(r.get("log_prob_micro_batch_size_per_gpu") or a["ppo_micro_batch_size_per_gpu"])
        self.value_micro = int(c.get("forward_micro_batch_size_per_gpu") or c["ppo_micro_batch_size_per_gpu"])
        self.lr_warmup = {"actor": int(float(a.get("lr_warmup_steps_ratio", 0.0)) * self.total_steps),
                          "critic": int(float(c.get("lr_warmup_steps_ratio", 0.0)) * self.total_steps)}
        self.base_lr = {"actor": float(a["lr"]), "critic": float(c["lr"])}
        self.state = RunState()
        self.eos = set(eos_token_ids(self.tokenizer, self.actor))
        self.fingerprint = ckpt.fingerprint(
            g, {"prompts": prompts_path, "policy_init": policy_init, "reward_model": reward_model},
            ckpt.code_version(FINGERPRINT_MODULES), {"backbone": backbone, "processes": self.n_procs,
                                                     "seed": self.seed})

    # -- one PPO step ---------------------------------------------------------------------------------------------
    def step(self) -> dict:
        g, step = self.g, self.state.step
        torch.manual_seed(self.seed * 1_000_003 + step * 101 + rank())  # per-step seed: resume-exact sampling
        t0 = time.perf_counter()
        epoch, b, idx = batch_indices(step, len(self.prompts.ids), self.bs["train_batch_size"], self.seed,
                                      bool(g.get("data_shuffle", True)))
        per = len(idx) // self.n_procs
        idx = idx[rank() * per:(rank() + 1) * per]
        prompt_ids = [self.prompts.ids[i] for i in idx]
        chats = [self.prompts.messages[i] for i in idx]
        timing = {}

        # 1. rollout
        t = time.perf_counter()
        empty_cuda_cache()  # the update phase's cached blocks back to the device before vLLM reallocates its memory
        self.rollout.wake_up()
        self.rollout.sync_weights(self.actor)
        responses = self.rollout.generate(prompt_ids)
        self.rollout.sleep()
        timing["time/generate"] = time.perf_counter() - t

        # 2. reward: the RM reads the response as verl's legacy RM worker passes it (specials kept, EOS removed) in
        # its own chat template; the style terms read the text with special tokens skipped (verl's reward managers)
        t = time.perf_counter()
        texts = [self.tokenizer.decode(r, skip_special_tokens=True) for r in responses]
        truncated = [not (len(r) and r[-1] in self.eos) for r in responses]
        rm_scores = self.reward.score(chats, [rm_response_text(self.tokenizer, r) for r in responses])
        total, parts = self.style(rm_scores, texts, [len(r) for r in responses], truncated)
        timing["time/reward"] = time.perf_counter() - t

        # 3. batch tensors: [left-padded prompt | right-padded response]
        batch = self._make_batch(prompt_ids, responses)
        scores = torch.tensor(total, dtype=torch.float32, device=self.device)

        # 4. values and old log-probs (no grad)
        t = time.perf_counter()
        with torch.no_grad(), _autocast(self.device, self.autocast_dtype):
            self.critic.eval()
            batch["values"] = self._chunked(lambda mb: sequence_values(
                self.critic, mb["input_ids"], mb["attention_mask"], mb["response_mask"]), self.value_micro, batch)
            self.actor.eval()
            batch["old_log_probs"] = self._chunked(lambda mb: sequence_logprobs(
                self.actor, mb["input_ids"], mb["attention_mask"], mb["response_mask"],
                self.sampling["temperature"])[0], self.logprob_micro, batch)
        timing["time/values_logprobs"] = time.perf_counter() - t

        # 5. advantages: GAE, then whitening over all response tokens of the batch
        mask = batch["response_mask"].float()
        rewards = token_level_rewards(scores, mask)
        adv, ret = gae(rewards, batch["values"], mask, float(g["gamma"]), float(g["lam"]))
        batch["advantages"] = global_whiten(adv, mask) if g.get("norm_adv", True) else adv
        batch["returns"] = ret

        # 6. updates: critic first, actor once the critic warm-up is over (verl order and count)
        t = time.perf_counter()
        self._set_lr("critic", step)
        metrics = update_critic(self.critic, self.critic_opt, batch, self.upd_critic)
        timing["time/update_critic"] = time.perf_counter() - t
        t = time.perf_counter()
        warmup = int(g.get("critic_warmup", 0))
        if actor_updates(step, warmup) < actor_updates(step + 1, warmup):
            self._set_lr("actor", actor_updates(step, warmup))
            metrics.update(update_actor(self.actor, self.actor_opt, batch, self.upd_actor))
        timing["time/update_actor"] = time.perf_counter() - t
        timing["time/step"] = time.perf_counter() - t0

        n_resp = int(mask.sum())
        n_all = int(batch["attention_mask"].sum())
        row = {"step": step + 1, "epoch": epoch, "batch_in_epoch": b}
        row["reward/score_mean"] = float(scores.mean())
        row["reward/rm_mean"] = float(sum(rm_scores) / len(rm_scores))
        for k, v in parts.items():
            row[f"reward/{k}_mean"] = float(sum(v) / len(v))
        lens = mask.sum(-1)
        row.update({"response_length/mean": float(lens.mean()), "response_length/max": float(lens.max()),
                    "response_length/min": float(lens.min()),
                    "response_length/clip_ratio": float(sum(truncated) / len(truncated)),
                    "critic/values_mean": float(masked_mean(batch["values"], mask)),
                    "critic/returns_mean": float(masked_mean(ret, mask)),
                    "critic/advantages_mean": float(masked_mean(adv, mask)),
                    "critic/explained_variance": explained_variance(batch["values"], ret, mask)})
        row.update(metrics)
        row.update(timing)
        row["perf/tokens_per_s"] = n_all / max(timing["time/step"], 1e-9)
        row["perf/response_tokens"] = n_resp
        row["perf/total_tokens"] = n_all
        if self.device.type == "cuda":
            row["gpu/max_memory_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
            row["gpu/max_memory_reserved_gb"] = torch.cuda.max_memory_reserved() / 2**30
            torch.cuda.reset_peak_memory_stats()
        self.state.step += 1
        return reduce_row(row)

    def _chunked(self, fn: Callable[[dict], torch.Tensor], size: int, batch: dict) -> torch.Tensor:
        """`fn` over micro-batches of `size` rows, each cut to its own padding; results padded back and joined."""
        n, width = batch["input_ids"].shape[0], batch["response_mask"].shape[-1]
        return torch.cat([pad_response(fn(micro_batch(batch, sl)), width) for sl in _split(n, size)], dim=0)

    def _set_lr(self, role: str, updates_done: int) -> None:
        """verl's constant schedule with linear warm-up over int(lr_warmup_steps_ratio x total steps) updates (its
        scheduler steps once per update call; the first update runs at lr 0 when there is a warm-up)."""
        lr = self.base_lr[role] * lr_warmup_factor(updates_done, self.lr_warmup[role])
        for group in (self.actor_opt if role == "actor" else self.critic_opt).param_groups:
            group["lr"] = lr

    def _make_batch(self, prompt_ids: list[list[int]], responses: list[list[int]]) -> dict:
        pad = self.tokenizer.pad_token_id
        p_ids, p_mask = left_pad(prompt_ids, pad)
        R = max(1, max(len(r) for r in responses))
        r_ids = torch.full((len(responses), R), pad, dtype=torch.long)
        r_mask = torch.zeros((len(responses), R), dtype=torch.long)
        for i, r in enumerate(responses):
            if r:
                r_ids[i, :len(r)] = torch.tensor(r)
                r_mask[i, :len(r)] = 1
        dev = self.device
        return {"input_ids": torch.cat([p_ids, r_ids], 1).to(dev),
                "attention_mask": torch.cat([p_mask, r_mask], 1).to(dev),
                "response_mask": r_mask.to(dev)}

    # -- the loop -------------------------------------------------------------------------------------------------
    def train(self, progress: bool = True, fresh: bool = False) -> RunState:
        """Run (or resume) to `total_steps`, then write final/. Resume takes the newest checkpoint when its run
        fingerprint equals this run's (else one line naming the differing keys; `fresh` starts over). SIGTERM/SIGINT
        (a SLURM cancel or time-out, Ctrl-C) end the run with a checkpoint when one fits in `stop_grace_s`, then
        raise TrainingInterrupted (exit 128 + signal)."""
        metrics_path = self.output_dir / "metrics.jsonl"
        ckpt_root = self.output_dir / "checkpoints"
        resume = bool(self.g.get("resume", True))
        if rank() == 0:
            for p in ckpt.clean_litter(self.output_dir, ckpt_root):
                log.info("removed %s left by an interrupted run", p)
            if fresh:
                shutil.rmtree(ckpt_root, ignore_errors=True)
                shutil.rmtree(self.output_dir / "final", ignore_errors=True)
            elif resume:
                ckpt.latest_valid(ckpt_root)  # checksums: damaged newer checkpoints reported (one line) and removed
        if dist_on():  # pragma: no cover
            torch.distributed.barrier()
        latest = ckpt.latest(ckpt_root) if resume else None
        rows: list[dict] = []
        if latest is not None:
            state = ckpt.read_state(latest)
            ckpt.check_fingerprint(state.get("fingerprint"), self.fingerprint, str(latest))
            if int(state["step"]) > self.total_steps:
                raise GrloError(f"checkpoint is at step {state['step']}, past the {self.total_steps} steps configured: "
                                f"raise the step budget, or set grlo.fresh: true for one run (--fresh) to start over",
                                path=str(latest))
            self.state.step = ckpt.load(latest, self)
            rows = ckpt.saved_metrics(latest)
            log.info("resumed from %s (step %d)", latest, self.state.step)
        self.state.metrics = rows
        if rank() == 0:
            write_jsonl(metrics_path, rows)  # the rows up to the checkpoint, whatever a failed job left or deleted
        save_freq = int(self.g.get("save_freq", -1))
        keep_last = int(self.g.get("keep_last", 1))
        loggers = Loggers(self.g, self.output_dir) if rank() == 0 else None
        bar = progress_bar(self.total_steps, self.state.step, progress and rank() == 0)
        stop = StopOnSignal(float(self.g.get("stop_grace_s", 25.0)), self._estimated_save_s())
        try:
            with stop:
                while self.state.step < self.total_steps:
                    stop.step_started()
                    row = self.step()
                    stop.step_finished()
                    if rank() == 0:
                        append_jsonl(metrics_path, row)
                        self.state.metrics.append(row)
                        loggers.log(row)
                        bar.update(1)
                        bar.set_postfix(reward=f"{row['reward/score_mean']:.3f}", step=row["step"])
                    stopping = stop.requested()
                    done = self.state.step >= self.total_steps
                    if stopping or (not done and save_freq > 0 and self.state.step % save_freq == 0):
                        t = time.perf_counter()
                        ckpt.save(ckpt_root / f"step_{self.state.step:06d}", self, keep_last=keep_last)
                        stop.saved(time.perf_counter() - t)
                    if stopping:
                        raise TrainingInterrupted(stop.signum, self.state.step)
        finally:
            bar.close()
            if loggers:
                loggers.close()
            if rank() == 0:
                ckpt.clean_litter(self.output_dir, ckpt_root)
        self.save_final()
        if rank() == 0:  # a finished run needs no resume state (GBs); a later run with other settings starts clean
            shutil.rmtree(ckpt_root, ignore_errors=True)
        return self.state

    def _estimated_save_s(self) -> float:
        """A first guess of a checkpoint's write time: fp32 weights + AdamW moments of actor and critic at 200 MB/s
        (replaced by the measured time after the first save)."""
        n = sum(p.numel() for m in (self.actor, self.critic) for p in m.parameters())
        return n * 4 * 3 / 200e6

    def save_final(self) -> None:
        sd = full_model_state(self.actor)  # a collective under FSDP2: every rank takes part
        if rank() != 0:
            return
        ckpt.check_space(self.output_dir, ckpt.SPACE_FACTOR * ckpt.tensor_bytes(sd))
        with atomic_dir(self.output_dir / "final") as tmp:
            self.actor.save_pretrained(tmp, state_dict=sd)
            self.tokenizer.save_pretrained(tmp)
            write_json(Path(tmp) / "manifest.json", {
                "stage": "grlo", "engine": "native", "backbone": self.backbone, "steps": self.state.step,
                "batch_sizes": self.bs, "grlo_config": self.g, "versions": library_versions(),
            })


def load_critic(path: str, dtype: torch.dtype):
    """Value model = the backbone checkpoint with a fresh 1-output token head (verl: AutoModelForTokenClassification);
    dropout off, as verl sets, so values are deterministic."""
    from transformers import AutoConfig, AutoModelForTokenClassification  # heavy: transformers

    cfg = AutoConfig.from_pretrained(path)
    cfg.num_labels = 1
    cfg.classifier_dropout = 0.0
    return AutoModelForTokenClassification.from_pretrained(path, config=cfg, dtype=dtype)


def _pick_device(g: dict) -> torch.device:
    want = g.get("device", "auto")
    if want == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(want)



# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

def launch_command(n_gpus: int, argv: list[str]) -> list[str]:
    """How the rule starts training: one process on CPU/1 GPU, torchrun with one process per GPU otherwise."""
    if n_gpus <= 1:
        return ["grlo", "train-grlo", *argv]
    return ["torchrun", "--standalone", f"--nproc_per_node={n_gpus}", "-m", "grlo.cli", "train-grlo", *argv]


def add_arguments(p) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, deep-merged in order")
    p.add_argument("--backbone", required=True, help="registry name of the backbone (recorded in the manifest)")
    p.add_argument("--prompts", required=True, help="prepared prompts JSONL (rows with a `prompt` chat list)")
    p.add_argument("--policy-init", required=True, help="HF model dir of the backbone (actor and critic init)")
    p.add_argument("--reward-model", required=True, help="HF dir of the reward model (with its own tokenizer)")
    p.add_argument("--output-dir", required=True, help="writes final/, metrics.jsonl and checkpoints/ here")
    p.add_argument("--device-record", default=None, help="JSON file describing the device(s) used")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--fresh", action="store_true", help=FRESH_HELP)


FRESH_HELP = "start over: delete the checkpoints (and final/) instead of resuming from the newest checkpoint"


def run(args) -> int:
    cfg = config_mod.load(args.config)
    source = ", ".join(args.config)
    g = grlo_section(cfg)
    n_gpus = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1))
    in_launcher = "WORLD_SIZE" in os.environ
    if n_gpus > 1 and not in_launcher:  # pragma: no cover - multi-GPU: one process per GPU under torchrun
        if not torch.cuda.is_available() or torch.cuda.device_count() < n_gpus:
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise GrloError(f"{n_gpus} GPUs configured, {have} visible: set grlo.n_gpus_per_node (and "
                            f"resources.gpus_train) to what the job has", path=source, field="grlo.n_gpus_per_node")
        cmd = launch_command(n_gpus, _argv_of(args))
        log.info("launching: %s", " ".join(cmd))
        return subprocess.call(cmd)
    if in_launcher and int(os.environ["WORLD_SIZE"]) > 1 and not dist_on():  # pragma: no cover
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group(backend)
    if args.device_record and rank() == 0:
        record_device(args.device_record, world_size() if torch.cuda.is_available() else 0)
    trainer = PPOTrainer(cfg, args.backbone, args.prompts, args.policy_init, args.reward_model, args.output_dir,
                         source)
    try:
        trainer.train(progress=not args.no_progress, fresh=bool(getattr(args, "fresh", False) or g.get("fresh")))
    except TrainingInterrupted as e:
        where = (f"checkpoint saved at step {e.step}; rerun to resume" if e.step >= 0 else
                 "no new checkpoint (not enough time); a rerun resumes from the last one, if any")
        print(f"grlo train-grlo: stopped by signal {e.signum}: {where}", file=sys.stderr)
        return 128 + int(e.signum)
    return 0


def _argv_of(args) -> list[str]:
    out = ["--config", *args.config, "--backbone", args.backbone, "--prompts", args.prompts, "--policy-init",
           args.policy_init, "--reward-model", args.reward_model, "--output-dir", args.output_dir]
    if args.device_record:
        out += ["--device-record", args.device_record]
    if args.no_progress:
        out.append("--no-progress")
    if getattr(args, "fresh", False):
        out.append("--fresh")
    return out
