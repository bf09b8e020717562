"""The RLVR recipe both engines share (grlo.train.rlvr: TRL's GRPOTrainer; grlo.train.verl.rlvr_*: verl): the
stage's settings, the user turn, the reward functions and the run fingerprint a resume is checked against. Below both
engines, so neither imports the other."""

from __future__ import annotations

from typing import Any

from grlo import config as config_mod
from grlo.errors import GrloError
from grlo.rewards.general_reasoner import ModelVerifier, make_reward_funcs

STAGES = ("rlvr", "grlo-rlvr")


def stage_settings(cfg: dict, stage: str) -> dict:
    """rlvr.train overlaid with rlvr.stages.<stage> (max_prompts, max_steps, epochs, learning_rate...)."""
    if stage not in STAGES:
        raise GrloError(f"unknown stage {stage!r} ({', '.join(STAGES)})", field="--stage")
    train = dict(config_mod.get(cfg, "rlvr.train", {}) or {})
    train.update(config_mod.get(cfg, f"rlvr.stages.{stage}", {}) or {})
    missing = [k for k in _REQUIRED if train.get(k) is None]
    if missing:
        raise GrloError(f"missing {', '.join(missing)} (set them in rlvr.train)", field="rlvr.train")
    return train


_REQUIRED = ("num_generations", "batch_prompts", "mini_batch_prompts", "per_device_batch", "learning_rate",
             "max_completion_length", "beta")


def user_content(question: str, instruction: str | None) -> str:
    """The one user turn both engines train on: the question, then General-Reasoner's instruction."""
    return question if not instruction else f"{question} {instruction}"


# Settings that may change between a run and its resumption (a longer budget); anything else changes the numbers.
_RESUMABLE_CHANGES = ("max_steps", "epochs", "save_steps", "save_total_limit", "logging_steps", "keep_checkpoints")
_FINGERPRINT = "run_fingerprint.json"
# the code that computes an RLVR run's numbers (with TRL's and the libraries' versions)
_FINGERPRINT_MODULES = ("grlo.train.rlvr", "grlo.train.rlvr_recipe", "grlo.rewards.general_reasoner")


def run_fingerprint(recipe: dict, init: str, data: str, stage: str, reward: Any, seed: int) -> dict:
    """Flat {key: value} of what changes the numbers (grlo.train.checkpoint.fingerprint): the recipe less
    _RESUMABLE_CHANGES, the init model and data files, the reward settings, the seed, the code version."""
    from grlo.train import checkpoint as ckpt  # heavy: torch

    code = ckpt.code_version(_FINGERPRINT_MODULES, ("torch", "transformers", "trl", "accelerate"))
    return ckpt.fingerprint(recipe, {"init": init, "data": data}, code, {"stage": stage, "seed": seed, "reward": reward},
                            name="rlvr.train", resumable=_RESUMABLE_CHANGES)


def reward_setup(rc: dict, tok) -> tuple[list, list[float]]:
    """The reward of `rc` (the `rlvr.reward` section) for both engines: [general_reasoner, correct] functions and
    their weights, lengths counted in `tok`'s tokens."""
    kind = rc.get("kind", "general_reasoner")
    weights = {"general_reasoner": [1.0, 0.0], "correctness": [0.0, 1.0]}.get(kind)
    if weights is None:
        raise GrloError(f"unknown reward kind {kind!r} (general_reasoner, correctness)", field="rlvr.reward.kind")
    verifier = None
    if rc.get("verifier", "math") == "general-verifier":
        path = rc.get("verifier_path")
        if not path:
            raise GrloError("the general-verifier needs a local model dir (models/general-verifier)",
                            field="rlvr.reward.verifier_path")
        verifier = ModelVerifier(path, max_new_tokens=int(rc.get("verifier_max_new_tokens", 1024)))

    def n_tokens(s: str) -> int:
        return len(tok(s, add_special_tokens=False)["input_ids"])

    return make_reward_funcs(length_fn=n_tokens, verifier=verifier), weights
