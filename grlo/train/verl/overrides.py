"""verl `main_ppo` overrides from the `grlo:` config: train.sh's 46 overrides at train.sh's values, plus our declared
deviations, each with its reason, in one place (`DEVIATION_REASONS`).

Source of TRAIN_SH: the official launcher, github.com/SJY8460/GRLO `train.sh` at commit
353c180be4c9baed3f1680f408e7e3ee47f89390 (the `python3 -m verl.trainer.main_ppo` line; shell quoting removed; `<model>`
and `$train_files`/`$val_files` are the launcher's placeholders). It composes unchanged on verl 0.6.1
(tests/test_verl_config.py composes verl's own Hydra config with what this module builds).

Every value is produced from the config key that mirrors it (config/config.yaml `grlo:`), so the same keys drive the
native engine and verl. A produced value that differs from train.sh's is a deviation: the declared ones carry their
reason from `DEVIATION_REASONS`; any other (a user's config change) is reported as such. Settings train.sh leaves at
verl's defaults are passed only when the config changes them (`VERL_DEFAULTS`, checked against verl 0.6.1's own
config by the tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from grlo.errors import GrloError
from grlo.rewards.style import StyleMix
from grlo.train.verl import cpu as CPU

VERL_VERSION = "0.6.1"
TRAIN_SH_SOURCE = "github.com/SJY8460/GRLO train.sh @ 353c180be4c9baed3f1680f408e7e3ee47f89390"

# (key, value) exactly as train.sh passes them, in train.sh's order.
TRAIN_SH: tuple[tuple[str, str], ...] = (
    ("algorithm.adv_estimator", "gae"),
    ("data.train_files", "$train_files"),
    ("data.val_files", "$val_files"),
    ("data.train_batch_size", "1024"),
    ("data.max_prompt_length", "1024"),
    ("data.max_response_length", "3072"),
    ("data.filter_overlong_prompts", "True"),
    ("data.truncation", "error"),
    ("data.return_raw_chat", "True"),
    ("actor_rollout_ref.model.path", "<model>"),
    ("actor_rollout_ref.actor.optim.lr", "1e-6"),
    ("actor_rollout_ref.model.use_remove_padding", "True"),
    ("actor_rollout_ref.actor.ppo_mini_batch_size", "256"),
    ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", "16"),
    ("actor_rollout_ref.actor.fsdp_config.param_offload", "False"),
    ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", "False"),
    ("actor_rollout_ref.actor.use_kl_loss", "False"),
    ("actor_rollout_ref.model.enable_gradient_checkpointing", "True"),
    ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", "32"),
    ("actor_rollout_ref.rollout.tensor_model_parallel_size", "1"),
    ("actor_rollout_ref.rollout.name", "vllm"),
    ("actor_rollout_ref.rollout.gpu_memory_utilization", "0.7"),
    ("critic.optim.lr", "1e-5"),
    ("critic.model.use_remove_padding", "True"),
    ("critic.model.path", "<model>"),
    ("critic.model.enable_gradient_checkpointing", "True"),
    ("critic.ppo_micro_batch_size_per_gpu", "32"),
    ("critic.model.fsdp_config.param_offload", "False"),
    ("critic.model.fsdp_config.optimizer_offload", "False"),
    ("reward_model.enable", "True"),
    ("reward_model.reward_manager", "style_mix"),
    ("reward_model.model.path", "Skywork/Skywork-Reward-V2-Llama-3.1-8B"),
    ("reward_model.model.use_remove_padding", "True"),
    ("reward_model.model.fsdp_config.param_offload", "True"),
    ("reward_model.micro_batch_size_per_gpu", "32"),
    ("algorithm.use_kl_in_reward", "False"),
    ("trainer.critic_warmup", "0"),
    ("trainer.logger", '["console"]'),
    ("trainer.project_name", "llama-3.2-3b-base-ppo-test"),
    ("trainer.experiment_name", "llama-3.2-3b-base-ppo-test"),
    ("trainer.n_gpus_per_node", "4"),
    ("trainer.nnodes", "1"),
    ("trainer.save_freq", "200"),
    ("trainer.test_freq", "7"),
    ("trainer.use_legacy_worker_impl", "auto"),
    ("trainer.total_epochs", "15"),
)

# train.sh key -> the `grlo:` config key that produces it (None: no config key, train.sh's value is passed as is).
CONFIG_KEY: dict[str, str | None] = {
    "algorithm.adv_estimator": "adv_estimator",
    "data.train_batch_size": "train_batch_size",
    "data.max_prompt_length": "max_prompt_length",
    "data.max_response_length": "max_response_length",
    "data.filter_overlong_prompts": "filter_overlong_prompts",
    "data.return_raw_chat": "return_raw_chat",
    "actor_rollout_ref.actor.optim.lr": "actor.lr",
    "actor_rollout_ref.model.use_remove_padding": "actor.use_remove_padding",
    "actor_rollout_ref.actor.ppo_mini_batch_size": "actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "actor.ppo_micro_batch_size_per_gpu",
    "actor_rollout_ref.actor.use_kl_loss": "use_kl_loss",
    "actor_rollout_ref.model.enable_gradient_checkpointing": "actor.gradient_checkpointing",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "rollout.log_prob_micro_batch_size_per_gpu",
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "rollout.tensor_model_parallel_size",
    "actor_rollout_ref.rollout.name": "rollout.engine",
    "actor_rollout_ref.rollout.gpu_memory_utilization": "rollout.gpu_memory_utilization",
    "critic.optim.lr": "critic.lr",
    "critic.model.enable_gradient_checkpointing": "critic.gradient_checkpointing",
    "critic.ppo_micro_batch_size_per_gpu": "critic.ppo_micro_batch_size_per_gpu",
    "reward_model.reward_manager": "reward.reward_manager",
    "reward_model.model.fsdp_config.param_offload": "reward.param_offload",
    "algorithm.use_kl_in_reward": "use_kl_in_reward",
    "trainer.critic_warmup": "critic_warmup",
    "trainer.n_gpus_per_node": "n_gpus_per_node",
    "trainer.nnodes": "nnodes",
    "trainer.test_freq": "test_freq",
    "trainer.total_epochs": "total_epochs",
}

# Settings train.sh leaves at verl's defaults: verl key -> (grlo config key, verl 0.6.1 default). Passed only when the
# config differs (then reported as a deviation). tests/test_verl_config.py checks each default against verl's config.
VERL_DEFAULTS: dict[str, tuple[str, Any]] = {
    "algorithm.gamma": ("gamma", 1.0),
    "algorithm.lam": ("lam", 1.0),
    "data.shuffle": ("data_shuffle", True),
    "trainer.total_training_steps": ("total_training_steps", None),
    "actor_rollout_ref.actor.optim.betas": ("actor.betas", [0.9, 0.999]),
    "actor_rollout_ref.actor.optim.weight_decay": ("actor.weight_decay", 0.01),
    "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": ("actor.lr_warmup_steps_ratio", 0.0),
    "actor_rollout_ref.actor.grad_clip": ("actor.grad_clip", 1.0),
    "actor_rollout_ref.actor.ppo_epochs": ("actor.ppo_epochs", 1),
    "actor_rollout_ref.actor.shuffle": ("actor.shuffle", False),
    "actor_rollout_ref.actor.clip_ratio": ("actor.clip_ratio", 0.2),
    "actor_rollout_ref.actor.clip_ratio_c": ("actor.clip_ratio_c", 3.0),
    "actor_rollout_ref.actor.loss_agg_mode": ("actor.loss_agg_mode", "token-mean"),
    "actor_rollout_ref.actor.entropy_coeff": ("actor.entropy_coeff", 0),
    "critic.optim.betas": ("critic.betas", [0.9, 0.999]),
    "critic.optim.weight_decay": ("critic.weight_decay", 0.01),
    "critic.grad_clip": ("critic.grad_clip", 1.0),
    "critic.ppo_epochs": ("critic.ppo_epochs", 1),
    "critic.cliprange_value": ("critic.cliprange_value", 0.5),
    "actor_rollout_ref.rollout.n": ("rollout.n", 1),
    "actor_rollout_ref.rollout.temperature": ("rollout.temperature", 1.0),
    "actor_rollout_ref.rollout.top_p": ("rollout.top_p", 1.0),
    "actor_rollout_ref.rollout.top_k": ("rollout.top_k", -1),
    "actor_rollout_ref.rollout.dtype": ("rollout.dtype", "bfloat16"),
}

# The declared deviations: why a train.sh value is replaced or a key is added. One place, one reason each.
# What verl 0.6.1's create_rl_sampler does without data.seed (both verl stages' data.seed deviation says it; tested on
# verl's own sampler in tests/verl_env/test_verl_resume_order.py)
UNSEEDED_ORDER = ("verl 0.6.1 then shuffles with a fresh torch.Generator at torch's fixed default seed 67280421310721, "
                  "no fallback to 1")

DEVIATION_REASONS: dict[str, str] = {
    "data.train_files": "path: our prepared prompts in verl's parquet schema (grlo.train.verl.data)",
    "data.val_files": "path: our validation file, MATH-500 with rule-scored answers (verl 0.6.1 validates with "
                      "rule-based rewards only; train.sh's val_files is unreleased; docs/grlo_ppo.md)",
    "actor_rollout_ref.model.path": "path: the backbone fetched by the workflow (pinned revision)",
    "critic.model.path": "path: the backbone fetched by the workflow (train.sh: the actor's checkpoint)",
    "reward_model.model.path": "path: the same reward model fetched by the workflow at a pinned revision",
    "data.train_batch_size": "batch adaptation: fewer usable prompts than one batch (the public file has 1,000); "
                             "grlo.adapt_batch_size keeps train/mini (optimizer steps per batch), verl's micro-batch "
                             "divisibility and the GPU count",
    "actor_rollout_ref.actor.ppo_mini_batch_size": "batch adaptation (see data.train_batch_size)",
    "trainer.project_name": "project name: ours (train.sh's names a Llama-3.2-3B test run)",
    "trainer.experiment_name": "project name: one experiment per backbone",
    "trainer.logger": "metrics: verl's file logger writes the per-step JSONL we convert to metrics.jsonl",
    "trainer.save_freq": "save cadence: train.sh's 200 > 60 steps never saves before the end, so a crash restarts "
                         "from zero; saving every grlo.verl.save_freq steps changes no number",
    "trainer.default_local_dir": "path: checkpoints under the rule's output directory",
    "trainer.resume_mode": "resume: verl's automatic resume from the last checkpoint (verl's default, made explicit)",
    "trainer.max_actor_ckpt_to_keep": "disk: keep grlo.keep_last checkpoints (each 4B actor + optimizer ~48 GB)",
    "trainer.max_critic_ckpt_to_keep": "disk: keep grlo.keep_last checkpoints",
    "data.seed": f"seed: the config's one seed drives verl's data shuffle (train.sh sets none: {UNSEEDED_ORDER}; the "
                 "order is that of no seed we can name in the config)",
    "data.sampler.class_path": "resume: our EpochSampler (grlo/train/verl/sampler.py) keeps the epoch's seeded order "
                               "across a resume; verl 0.6.1 restores the position but not its sampler's generator "
                               "(fixed after 0.6.1, verl PR #4156), so a resumed run would train on other batches",
    "data.sampler.class_name": "resume: see data.sampler.class_path",
    "data.dataloader_num_workers": "resume: verl 0.6.1 requires 0 data-loader workers with a custom sampler (no "
                                   "prefetch past the checkpoint); text rows load in microseconds",
    "reward_model.model.fsdp_config.param_offload": "declared only: verl 0.6.1's reward-model worker always offloads "
                                                    "its parameters (fsdp_workers.py RewardModelWorker), whatever "
                                                    "this key says",
    "env": "env: verl's TaskRunner and workers get it through Ray's runtime_env, so it reaches every node of a "
           "multi-node cluster, not only the main_ppo process",
    "custom_reward_function.path": "reward-manager import: verl imports this file in its trainer process, which "
                                   "registers our `style_mix` reward manager (the official one is unreleased)",
    "custom_reward_function.name": "reward-manager import: that file's rule_score (verl's own rule scorer) scores the "
                                   "validation rows, which carry a ground truth",
    "+reward_model.reward_kwargs.weights": "style_mix weights from grlo.reward.style_mix (our assumption, "
                                           "grlo/rewards/style.py)",
    "+reward_model.reward_kwargs.max_response_length": "style_mix length term: grlo.max_response_length",
    "+reward_model.reward_kwargs.log_path": "style_mix logs each reward component per call to this JSONL",
}


@dataclass
class Paths:
    """Inputs and outputs of one verl run (absolute: Ray workers do not share the driver's working directory)."""

    train_file: str
    val_file: str
    policy_init: str
    reward_model: str
    checkpoints: str
    reward_log: str
    plugin: str = field(default_factory=lambda: plugin_path())

    def __post_init__(self):
        for k, v in vars(self).items():
            setattr(self, k, os.path.abspath(v))


def plugin_path() -> str:
    """The plugin file's path, found without importing it (it imports verl, which the host need not have)."""
    return os.path.abspath(importlib.util.find_spec("grlo.train.verl.plugin").origin)


@dataclass
class Override:
    key: str
    value: str
    deviation: str | None = None  # the reason, when the key deviates from train.sh or is not in it

    def arg(self) -> str:
        return f"{self.key}={self.value}"


def fmt(v: Any) -> str:
    """A Python value as a Hydra override value (booleans as train.sh writes them)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":")) if not isinstance(v, dict) else \
            "{" + ",".join(f"{k}:{fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def normalise(value: str) -> Any:
    """An override value string as a comparable Python value ("1e-6" == "1e-06" == 1e-06; "True" == True)."""
    s = value.strip().strip("'\"")
    if s in ("True", "true"):
        return True
    if s in ("False", "false"):
        return False
    if s in ("null", "None"):
        return None
    try:
        f = float(s)
        return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f
    except ValueError:
        pass
    if s.startswith("["):
        try:
            return json.loads(s)
        except ValueError:
            return s
    return s


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a == b


def get(g: dict, dotted: str, default: Any = KeyError) -> Any:
    node: Any = g
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is KeyError:
                raise GrloError("missing key", field=f"grlo.{dotted}")
            return default
        node = node[part]
    return node


def verl_section(g: dict) -> dict:
    v = g.get("verl") or {}
    if not isinstance(v, dict):
        raise GrloError("must be a mapping", field="grlo.verl")
    return v


def check_supported(g: dict, source: str = "config", cpu: bool = False) -> None:
    """Config choices verl cannot express: refuse them instead of silently training something else (cpu: a CPU run,
    grlo.train.verl.cpu, which replaces the rollout)."""
    if not g.get("norm_adv", True):
        raise GrloError("verl's GAE always whitens advantages: set grlo.norm_adv: true or grlo.engine: native",
                        path=source, field="grlo.norm_adv")
    norm = g.get("loss_agg_normalization", "micro-batch-mean")
    if norm != "micro-batch-mean":
        raise GrloError(f"loss_agg_normalization {norm!r}: verl 0.6.1's legacy workers (train.sh) average per-micro-batch "
                        "token means; set grlo.loss_agg_normalization: micro-batch-mean or grlo.engine: native",
                        path=source, field="grlo.loss_agg_normalization")
    init = get(g, "critic.init", "policy_init")
    if init != "policy_init":
        raise GrloError(f"critic.init {init!r}: verl's critic starts from the actor's checkpoint (train.sh); set "
                        "grlo.critic.init: policy_init", path=source, field="grlo.critic.init")
    engine = get(g, "rollout.engine")
    if not cpu and engine != "vllm":  # verl 0.6.1 on GPU: vllm (train.sh) or sglang; nothing else is ours to pick
        raise GrloError(f"rollout engine {engine!r}: the verl engine on GPU rolls out with vllm (train.sh); set "
                        "grlo.rollout.engine: vllm (CPU runs use HF generate by themselves)", path=source,
                        field="grlo.rollout.engine")


def build_overrides(g: dict, backbone: str, paths: Paths, batch: dict, seed: int,
                    source: str = "config", cpu: bool = False, env: dict | None = None) -> list[Override]:
    """The ordered `main_ppo` overrides: train.sh's keys first (in train.sh's order), then the added keys.
    cpu: a run without a GPU (never paper mode): grlo.train.verl.cpu's overrides replace or join these.
    env: variables verl's TaskRunner and workers need, passed through Ray's runtime_env (they reach every node)."""
    check_supported(g, source, cpu)
    v = verl_section(g)
    produced: dict[str, Any] = {
        "data.train_files": paths.train_file,
        "data.val_files": paths.val_file,
        "actor_rollout_ref.model.path": paths.policy_init,
        "critic.model.path": paths.policy_init,
        "reward_model.model.path": paths.reward_model,
        "trainer.logger": ["console", "file", *[x for x in (g.get("logger") or []) if x not in ("console", "file")]],
        "trainer.project_name": g.get("project_name") or "grlo",
        "trainer.experiment_name": g.get("experiment_name") or f"{backbone}-grlo",
        "trainer.save_freq": int(v.get("save_freq", g.get("save_freq", -1))),
    }
    for key, ck in CONFIG_KEY.items():
        if key not in produced and ck is not None:
            val = get(g, ck, None)
            if val is not None:
                produced[key] = val
    produced["data.train_batch_size"] = batch["train_batch_size"]
    produced["actor_rollout_ref.actor.ppo_mini_batch_size"] = batch["actor_mini"]

    out: list[Override] = []
    for key, sh_value in TRAIN_SH:
        if key not in produced:
            out.append(Override(key, sh_value))
            continue
        value = fmt(produced[key])
        reason = None
        if not same(normalise(value), normalise(sh_value)):
            reason = DEVIATION_REASONS.get(key) or (
                f"set in config (grlo.{CONFIG_KEY.get(key)} = {value}); train.sh: {sh_value}")
        elif DEVIATION_REASONS.get(key, "").startswith("declared only"):  # train.sh's value, which verl ignores
            reason = DEVIATION_REASONS[key]
        out.append(Override(key, value, reason))

    # verl defaults train.sh inherits: only when the config changes them
    for key, (ck, default) in VERL_DEFAULTS.items():
        val = get(g, ck, default)
        if key == "actor_rollout_ref.actor.clip_ratio" and val is None:
            continue
        if not same(normalise(fmt(val)), normalise(fmt(default))):
            out.append(Override(key, fmt(val), f"set in config (grlo.{ck} = {fmt(val)}); train.sh leaves verl's "
                                                f"default {fmt(default)}"))
    if batch["critic_mini"] != batch["actor_mini"]:
        out.append(Override("critic.ppo_mini_batch_size", str(batch["critic_mini"]),
                            f"set in config (grlo.critic.ppo_mini_batch_size); verl's default is the actor's "
                            f"{batch['actor_mini']}"))

    keep = int(g.get("keep_last", 1))
    added = [
        ("trainer.default_local_dir", paths.checkpoints),
        ("trainer.resume_mode", str(v.get("resume_mode", "auto"))),
        ("trainer.max_actor_ckpt_to_keep", str(keep)),
        ("trainer.max_critic_ckpt_to_keep", str(keep)),
        ("data.seed", str(int(seed))),
        ("data.sampler.class_path", "pkg://grlo.train.verl.sampler"),
        ("data.sampler.class_name", "EpochSampler"),
        ("data.dataloader_num_workers", "0"),
        ("custom_reward_function.path", paths.plugin),
        ("custom_reward_function.name", "rule_score"),
        ("+reward_model.reward_kwargs.weights", fmt(style_weights(g))),
        ("+reward_model.reward_kwargs.max_response_length", str(int(get(g, "max_response_length")))),
        ("+reward_model.reward_kwargs.log_path", paths.reward_log),
    ]
    out += [Override(k, val, DEVIATION_REASONS[k]) for k, val in added]
    # quoted: Hydra would read a number-like value as an int, and Ray takes only strings in env_vars
    out += [Override(f"+ray_kwargs.ray_init.runtime_env.env_vars.{k}", f"'{val}'", DEVIATION_REASONS["env"])
            for k, val in (env or {}).items()]
    if cpu:
        out = replace(out, [Override(k, val, why) for k, val, why in CPU.overrides()])
    return out


def replace(out: list[Override], new: list[Override]) -> list[Override]:
    """`out` with each of `new` replacing the override of the same key in place, or appended."""
    at = {o.key.lstrip("+"): i for i, o in enumerate(out)}
    out = list(out)
    for o in new:
        if o.key.lstrip("+") in at:
            out[at[o.key.lstrip("+")]] = o
        else:
            out.append(o)
    return out


def style_weights(g: dict) -> dict:
    s = StyleMix.from_config(get(g, "reward.style_mix", {}), 1)
    return {"rm": s.w_rm, "truncated": s.w_truncated, "repetition": s.w_repetition, "length": s.w_length}


def main_ppo_command(overrides: list[Override], python: str = "python3") -> list[str]:
    return [python, "-m", "verl.trainer.main_ppo", *[o.arg() for o in overrides]]


def render(cmd: list[str], overrides: list[Override]) -> str:
    """The command one argument per line (shell-continued), then one `# deviation:` line per deviation."""
    lines = [" \\\n    ".join(shlex.quote(a) for a in cmd)]
    lines += [f"# deviation: {o.key}: {o.deviation}" for o in overrides if o.deviation]
    return "\n".join(lines)
