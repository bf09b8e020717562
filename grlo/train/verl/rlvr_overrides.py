"""verl `main_ppo` overrides for the RLVR stages (`rlvr.engine: verl`): General-Reasoner's launcher settings at its
values, each produced from the `rlvr.train` key that the TRL engine reads too, plus our declared deviations, each
with its reason, in one place (`DEVIATION_REASONS`).

Source of GR_LAUNCHER: github.com/TIGER-AI-Lab/General-Reasoner `train_general_reasoner.sh` at commit
007e44cb1e6a624845616dd5c1c7e044e5bfd3cd (the `python -m main_ppo` line, in its order; the shell variables replaced
by the script's own defaults: TRAIN_BATCH_SIZE=1024, VAL_BATCH_SIZE=500, MAX_PROMPT_LENGTH=1024,
MAX_RESPONSE_LENGTH=8192, LEARNING_RATE=5e-7, PPO_MINI_BATCH_SIZE=256, PPO_MICRO_BATCH_SIZE=8, CLIP_RATIO=0.3,
KL_LOSS_COEF=0.0001, ENTROPY_COEFFIENT=0.001, KL_LOSS_TYPE=low_var_kl, TEMPERATURE=1.0, LOG_PROB_MICRO_BATCH_SIZE=160,
ROLLOUT_N=8, KL_COEF=0.001, TOTAL_EPOCHS=30, ROLLOUT_GPU_MEMORY_UTIL=0.6, offloads False; `$...` are its paths).
Its `main_ppo` is the repository's own copy, run against its verl submodule (commit c62e7ac7bc44); we run verl
0.6.1's `verl.trainer.main_ppo`. The override helpers (Override, fmt, normalise, same, render) are the GRLO engine's
(grlo.train.verl.overrides).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from grlo.errors import GrloError
from grlo.train.verl import cpu as CPU
from grlo.train.verl import overrides as O
from grlo.train.verl.overrides import Override, fmt, normalise, same

GR_SOURCE = "github.com/TIGER-AI-Lab/General-Reasoner train_general_reasoner.sh @ 007e44cb1e6a624845616dd5c1c7e044e5bfd3cd"

GR_LAUNCHER: tuple[tuple[str, str], ...] = (
    ("algorithm.adv_estimator", "grpo"),
    ("custom_reward_function.path", "./compute_score.py"),
    ("reward_model.enable", "True"),
    ("reward_model.model.path", "$HDFS_MODEL_PATH/general-verifier"),
    ("reward_model.strategy", "verifier"),
    ("reward_model.reward_manager", "naive"),
    ("reward_model.micro_batch_size", "0"),
    ("data.train_files", "[$HDFS_DATA_PATH/webinstruct-verified/train.parquet]"),
    ("data.val_files", "[$HDFS_DATA_PATH/webinstruct-verified/test.parquet]"),
    ("data.train_batch_size", "1024"),
    ("data.val_batch_size", "500"),
    ("data.max_prompt_length", "1024"),
    ("data.max_response_length", "8192"),
    ("data.filter_overlong_prompts", "True"),
    ("data.truncation", "error"),
    ("actor_rollout_ref.model.path", "$HDFS_MODEL_PATH/Qwen2.5-7B"),
    ("actor_rollout_ref.actor.optim.lr", "5e-7"),
    ("actor_rollout_ref.model.use_remove_padding", "True"),
    ("actor_rollout_ref.actor.ppo_mini_batch_size", "256"),
    ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", "8"),
    ("actor_rollout_ref.actor.use_kl_loss", "True"),
    ("actor_rollout_ref.actor.kl_loss_coef", "0.0001"),
    ("actor_rollout_ref.actor.entropy_coeff", "0.001"),
    ("actor_rollout_ref.actor.clip_ratio", "0.3"),
    ("actor_rollout_ref.actor.clip_ratio_c", "10"),
    ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
    ("actor_rollout_ref.model.enable_gradient_checkpointing", "True"),
    ("actor_rollout_ref.actor.fsdp_config.param_offload", "False"),
    ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", "False"),
    ("actor_rollout_ref.rollout.temperature", "1.0"),
    ("actor_rollout_ref.rollout.log_prob_micro_batch_size", "160"),
    ("actor_rollout_ref.rollout.tensor_model_parallel_size", "2"),
    ("actor_rollout_ref.rollout.name", "vllm"),
    ("actor_rollout_ref.rollout.gpu_memory_utilization", "0.6"),
    ("actor_rollout_ref.rollout.n", "8"),
    ("actor_rollout_ref.ref.log_prob_micro_batch_size", "160"),
    ("actor_rollout_ref.ref.fsdp_config.param_offload", "True"),
    ("actor_rollout_ref.rollout.enforce_eager", "False"),
    ("actor_rollout_ref.rollout.free_cache_engine", "False"),
    ("actor_rollout_ref.rollout.enable_chunked_prefill", "False"),
    ("algorithm.kl_ctrl.kl_coef", "0.001"),
    ("critic.ppo_micro_batch_size_per_gpu", "8"),
    ("trainer.critic_warmup", "0"),
    ("trainer.logger", "['console','wandb']"),
    ("trainer.project_name", "$PROJECT_NAME"),
    ("trainer.experiment_name", "$RUN_NAME"),
    ("trainer.n_gpus_per_node", "8"),
    ("trainer.nnodes", "1"),
    ("trainer.save_freq", "20"),
    ("trainer.test_freq", "5"),
    ("trainer.default_local_dir", "$HDFS_CHECKPOINT_PATH/$RUN_NAME"),
    ("trainer.total_epochs", "30"),
)

# launcher key -> the config key (under `rlvr.`) that produces it; the TRL engine reads the same rlvr.train keys.
CONFIG_KEY: dict[str, str] = {
    "data.train_batch_size": "train.batch_prompts",
    "data.max_prompt_length": "train.max_prompt_tokens",
    "data.max_response_length": "train.max_completion_length",
    "actor_rollout_ref.actor.optim.lr": "train.learning_rate",
    "actor_rollout_ref.actor.ppo_mini_batch_size": "train.mini_batch_prompts",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "train.per_device_batch",
    "actor_rollout_ref.actor.use_kl_loss": "train.beta",
    "actor_rollout_ref.actor.kl_loss_coef": "train.beta",
    "actor_rollout_ref.actor.entropy_coeff": "train.entropy_coef",
    "actor_rollout_ref.actor.clip_ratio": "train.epsilon",
    "actor_rollout_ref.model.enable_gradient_checkpointing": "train.gradient_checkpointing",
    "actor_rollout_ref.rollout.temperature": "train.temperature",
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "train.vllm_tensor_parallel_size",
    "actor_rollout_ref.rollout.gpu_memory_utilization": "verl.gpu_memory_utilization",
    "actor_rollout_ref.rollout.n": "train.num_generations",
    "actor_rollout_ref.rollout.name": "verl.rollout",
    "trainer.n_gpus_per_node": "gpus",
    "trainer.nnodes": "verl.nnodes",
    "trainer.save_freq": "train.save_steps",
    "trainer.total_epochs": "train.epochs",
}

# Launcher keys we do not pass at all: the reason is printed as a deviation line.
NOT_PASSED: dict[str, str] = {
    "reward_model.model.path": "not passed: the general-verifier (rlvr.reward.verifier: general-verifier) is loaded by "
                               "our reward function (custom_reward_function.reward_kwargs.verifier_path), not as a "
                               "verl reward-model worker",
    "reward_model.strategy": "not passed: `verifier` is a strategy of General-Reasoner's own main_ppo.py and verl fork "
                             "(verifier.RewardModelWorker); verl 0.6.1 has none",
    "reward_model.micro_batch_size": "not passed: no verl reward-model worker (see reward_model.enable)",
}

# Why a launcher value is replaced or a key is added. One place, one reason each.
DEVIATION_REASONS: dict[str, str] = {
    "custom_reward_function.path": "reward: our General-Reasoner reward (grlo/rewards/general_reasoner.py: -0.5 no "
                                   "answer / 1 - length penalty / 0) through grlo/train/verl/rlvr_reward.py; the "
                                   "launcher's compute_score.py is its rule fallback",
    "custom_reward_function.name": "reward: the batch entry point of that file",
    "reward_model.enable": "reward: no verl reward-model worker; the rule checker (default) or the general-verifier "
                           "(rlvr.reward.verifier) runs inside the reward function",
    "reward_model.reward_manager": "reward: verl's `batch` manager calls the reward once per batch, so the model "
                                   "verifier judges a batch at a time; per-sample scores are the same as `naive`'s",
    "data.train_files": "path: rlvr_data rows (data/rlvr/train.jsonl, first max_prompts) in verl's parquet schema",
    "data.val_files": "path: verl needs a file; validation is off (trainer.test_freq), so the training file is given",
    "data.val_batch_size": "validation is off (trainer.test_freq)",
    "actor_rollout_ref.model.path": "path: the stage's init model (models/{backbone} or checkpoints/{backbone}/grlo/final)",
    "trainer.test_freq": "validation off: we download only WebInstruct-verified's train split (no held-out "
                         "test.parquet); the workflow's evaluation stage measures the model",
    "trainer.val_before_train": "validation off (see trainer.test_freq)",
    "trainer.logger": "metrics: verl's file logger writes the per-step JSONL we convert to metrics.jsonl (no wandb)",
    "trainer.project_name": "project name: ours",
    "trainer.experiment_name": "project name: one experiment per backbone and stage",
    "trainer.default_local_dir": "path: checkpoints under the rule's output directory",
    "trainer.total_training_steps": "step budget: rlvr.stages.<stage>.max_steps optimizer steps / (batch_prompts / "
                                    "mini_batch_prompts) optimizer steps per verl step",
    "trainer.resume_mode": "resume: verl's automatic resume from the last checkpoint (verl's default, made explicit)",
    "trainer.max_actor_ckpt_to_keep": "disk: keep rlvr.train.save_total_limit checkpoints",
    "data.seed": f"seed: the config's seed drives verl's data shuffle (the launcher sets none: {O.UNSEEDED_ORDER})",
    "custom_reward_function.reward_kwargs.kind": "reward: rlvr.reward.kind (the trained reward; the other is logged)",
    "custom_reward_function.reward_kwargs.verifier": "reward: rlvr.reward.verifier (math: rule checker | "
                                                     "general-verifier: the model)",
    "custom_reward_function.reward_kwargs.verifier_path": "reward: the general-verifier's local directory",
    "custom_reward_function.reward_kwargs.verifier_max_new_tokens": "reward: rlvr.reward.verifier_max_new_tokens",
    "custom_reward_function.reward_kwargs.tokenizer": "reward: the length penalty counts policy tokens (docs/rlvr.md)",
    "custom_reward_function.reward_kwargs.log_path": "metrics: each reward call's part means go to this JSONL",
}
# Known deviations of a config value from the launcher's, with the reason (else: "set in config").
VALUE_REASONS: dict[str, str] = {
    "trainer.total_epochs": "epochs: unknown for the Qwen3-4B run (the launcher is for Qwen2.5-7B): our choice "
                            "rlvr.train.epochs",
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "a 4B model fits one GPU (rlvr.train."
                                                            "vllm_tensor_parallel_size; the launcher's 2 is for 7B)",
    "trainer.save_freq": "save cadence: rlvr.train.save_steps optimizer steps / optimizer steps per verl step",
}
# Keys the launcher leaves at verl's defaults that we add when the config asks (value, verl 0.6.1 default)
VERL_DEFAULTS: dict[str, tuple[str, Any]] = {
    "actor_rollout_ref.actor.optim.weight_decay": ("train.weight_decay", 0.01),
    "actor_rollout_ref.actor.grad_clip": ("train.max_grad_norm", 1.0),
    "actor_rollout_ref.actor.loss_agg_mode": ("verl.loss_agg_mode", "token-mean"),
}


@dataclass
class Paths:
    """Inputs and outputs of one verl RLVR run (absolute: Ray workers do not share the driver's directory)."""

    train_file: str
    policy_init: str
    checkpoints: str
    reward_log: str
    reward_fn: str = ""

    def __post_init__(self):
        if not self.reward_fn:
            self.reward_fn = importlib.util.find_spec("grlo.train.verl.rlvr_reward").origin
        for k, v in vars(self).items():
            setattr(self, k, os.path.abspath(v))


def _get(r: dict, dotted: str, default: Any = None) -> Any:
    node: Any = r
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def verl_steps(t: dict) -> dict:
    """Optimizer steps (the TRL engine's unit, rlvr.train.max_steps / save_steps) -> verl trainer steps (one
    generation batch of batch_prompts each, batch_prompts / mini_batch_prompts optimizer steps in it)."""
    per = int(t["batch_prompts"]) // int(t["mini_batch_prompts"])
    out = {"optimizer_steps_per_verl_step": per, "total_training_steps": None, "save_freq": -1}
    for key, name in (("max_steps", "total_training_steps"), ("save_steps", "save_freq")):
        v = t.get(key)
        if v:
            if int(v) % per:
                raise GrloError(f"{v} optimizer steps is not a whole number of verl steps ({per} optimizer steps "
                                "each: batch_prompts / mini_batch_prompts)", field=f"rlvr.train.{key}")
            out[name] = int(v) // per
    return out


def check_supported(t: dict, world: int, rollout: str = "vllm", cpu: bool = False) -> None:
    """Recipe choices verl's GRPO cannot express, and launches that would fail after the models load: refuse them
    instead of training something else or spending the GPU hours to find out."""
    if not cpu and rollout != "vllm":  # verl 0.6.1's registry: vllm, sglang; the verl image installs vllm only
        raise GrloError(f"rollout {rollout!r}: verl 0.6.1 on GPU rolls out with vllm here (General-Reasoner's "
                        "launcher; the verl image has no sglang, and verl has no HF rollout); set rlvr.verl.rollout: "
                        "vllm (CPU runs use HF generate by themselves)", field="rlvr.verl.rollout")
    if t.get("scale_rewards", "group") != "group":
        raise GrloError(f"scale_rewards {t.get('scale_rewards')!r}: verl's GRPO normalises by the group's std "
                        "(norm_adv_by_std_in_grpo); set rlvr.train.scale_rewards: group or rlvr.engine: trl",
                        field="rlvr.train.scale_rewards")
    if t.get("loss_type", "dapo") not in ("dapo", "bnpo"):
        raise GrloError(f"loss_type {t.get('loss_type')!r}: verl's token-mean matches TRL's dapo/bnpo only; set "
                        "rlvr.train.loss_type: dapo or rlvr.engine: trl", field="rlvr.train.loss_type")
    per_gpu = int(t["mini_batch_prompts"]) * int(t["num_generations"]) / max(world, 1)
    if per_gpu != int(per_gpu) or int(per_gpu) % int(t["per_device_batch"]):
        raise GrloError(f"mini_batch_prompts x num_generations / GPUs = {per_gpu} is not a multiple of per_device_batch "
                        f"{t['per_device_batch']} (verl's micro-batches)", field="rlvr.train.per_device_batch")


def build_overrides(rlvr: dict, t: dict, backbone: str, stage: str, paths: Paths, seed: int, cpu: bool = False,
                    env: dict | None = None) -> list[Override]:
    """The ordered `main_ppo` overrides: the launcher's keys first (in its order), then the added keys.
    rlvr: the `rlvr:` config section; t: its stage recipe (grlo.train.rlvr.stage_settings); cpu: a run without a GPU
    (never paper mode): grlo.train.verl.cpu's overrides replace or join these; env: variables verl's workers need,
    through Ray's runtime_env (as the GRLO engine passes them)."""
    v = rlvr.get("verl") or {}
    world = int(rlvr.get("gpus", 1) or 1) * int(v.get("nnodes", 1))
    check_supported(t, world, v.get("rollout", "vllm"), cpu)
    steps = verl_steps(t)
    view = {"train": {**t, "save_steps": steps["save_freq"]}, "gpus": int(rlvr.get("gpus", 1) or 1),
            "verl": {"nnodes": 1, "rollout": "vllm", "gpu_memory_utilization": 0.6, **v}}
    produced: dict[str, Any] = {
        "custom_reward_function.path": paths.reward_fn,
        "reward_model.enable": False,
        "reward_model.reward_manager": "batch",
        "data.train_files": paths.train_file,
        "data.val_files": paths.train_file,
        "data.val_batch_size": None,
        "actor_rollout_ref.model.path": paths.policy_init,
        "trainer.logger": ["console", "file"],
        "trainer.project_name": v.get("project_name") or "grlo",
        "trainer.experiment_name": f"{backbone}-{stage}",
        "trainer.test_freq": -1,
        "trainer.default_local_dir": paths.checkpoints,
    }
    for key, ck in CONFIG_KEY.items():
        val = _get(view, ck)
        if val is None:
            continue
        if key == "actor_rollout_ref.actor.use_kl_loss":
            val = float(val) > 0
        produced[key] = val

    out: list[Override] = []
    for key, value in GR_LAUNCHER:
        if key in NOT_PASSED:
            out.append(Override(key, "", NOT_PASSED[key]))
            continue
        if key not in produced:
            out.append(Override(key, value))
            continue
        mine = fmt(produced[key])
        reason = None
        if not same(normalise(mine), normalise(value)):
            reason = DEVIATION_REASONS.get(key) or VALUE_REASONS.get(key) or (
                f"set in config (rlvr.{CONFIG_KEY.get(key)} = {mine}); General-Reasoner: {value}")
        out.append(Override(key, mine, reason))
    for key, (ck, default) in VERL_DEFAULTS.items():
        val = _get(view, ck, default)
        if not same(normalise(fmt(val)), normalise(fmt(default))):
            out.append(Override(key, fmt(val), f"set in config (rlvr.{ck} = {fmt(val)}); General-Reasoner leaves "
                                               f"verl's default {fmt(default)}"))
    reward = rlvr.get("reward") or {}
    added: list[tuple[str, Any]] = [
        ("trainer.val_before_train", False),
        ("trainer.total_training_steps", steps["total_training_steps"]),
        ("trainer.resume_mode", v.get("resume_mode", "auto")),
        ("trainer.max_actor_ckpt_to_keep", t.get("save_total_limit")),
        ("data.seed", int(seed)),
        ("custom_reward_function.name", "compute_score_batch"),
        ("+custom_reward_function.reward_kwargs.kind", reward.get("kind", "general_reasoner")),
        ("+custom_reward_function.reward_kwargs.verifier", reward.get("verifier", "math")),
        ("+custom_reward_function.reward_kwargs.verifier_path",
         os.path.abspath(reward["verifier_path"]) if reward.get("verifier_path") else None),
        ("+custom_reward_function.reward_kwargs.verifier_max_new_tokens",
         int(reward.get("verifier_max_new_tokens", 1024))),
        ("+custom_reward_function.reward_kwargs.tokenizer", paths.policy_init),
        ("+custom_reward_function.reward_kwargs.log_path", paths.reward_log),
    ]
    for key, val in added:
        if val is None and key.startswith("trainer."):
            continue
        out.append(Override(key, fmt(val), DEVIATION_REASONS[key.lstrip("+")]))
    # the GRLO engine's resume-order fix: the same sampler, with its reasons
    out += [Override(k, val, O.DEVIATION_REASONS[k]) for k, val in (
        ("data.sampler.class_path", "pkg://grlo.train.verl.sampler"), ("data.sampler.class_name", "EpochSampler"),
        ("data.dataloader_num_workers", "0"))]

    out += [Override(f"+ray_kwargs.ray_init.runtime_env.env_vars.{k}", val, O.DEVIATION_REASONS["env"])
            for k, val in (env or {}).items()]
    if cpu:
        out = O.replace(out, [Override(k, val, why) for k, val, why in CPU.overrides()])
    return out


def passed(overrides: list[Override]) -> list[Override]:
    """The overrides on the command line (launcher keys we do not pass are only printed as deviations)."""
    return [o for o in overrides if o.key not in NOT_PASSED]
