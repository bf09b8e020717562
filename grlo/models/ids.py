"""Evaluated model ids and what each one evaluates: which weights, chat template and sampling.

Ids are `{source}--{variant}`: a backbone with base | grlo | rlvr | grlo-rlvr, or a released model with one of its
registry modes (qwen3-4b--thinking), or a config's custom model (NAME--custom, grlo.models.custom). Data, generation,
eval, train, report and the workflow all read this module.
"""

from __future__ import annotations

from grlo import config as config_mod
from grlo import registry
from grlo.errors import GrloError
from grlo.models.custom import model_ids, weights_path

VARIANTS = ("base", "grlo", "rlvr", "grlo-rlvr")
STAGES = ("grlo", "rlvr", "grlo-rlvr")


def rlvr_model_source(cfg: dict, backbone: str) -> str:
    """'checkpoint' when the RLVR model of `backbone` is the public checkpoint, else 'train'.

    The public General-Reasoner checkpoint exists for the primary backbone only: extra backbones always train.
    """
    mode = config_mod.get(cfg, "rlvr.mode", "checkpoint")
    if mode not in ("checkpoint", "train"):
        raise GrloError(f"unknown mode {mode!r} (checkpoint, train)", field="rlvr.mode")
    primary = config_mod.get(cfg, "backbones.primary")
    return "checkpoint" if mode == "checkpoint" and backbone == primary else "train"


def rlvr_checkpoint_model(cfg: dict) -> str:
    """Registry name of the public RLVR checkpoint (fetched by fetch-model when the source is 'checkpoint')."""
    return config_mod.get(cfg, "rlvr.checkpoint.model", "general-reasoner-qwen3-4b")


def eval_models(cfg: dict, which: str = "all") -> list[str]:
    """Model ids evaluated by the run. which: all | primary | released | extra | custom (evaluation.custom_models)."""
    ev = cfg["evaluation"]
    primary = [f"{cfg['backbones']['primary']}--{v}" for v in ev.get("variants", VARIANTS)]
    released = list(ev.get("released", []))
    extra = [f"{b}--{v}" for b in cfg["backbones"].get("extra", []) for v in ev.get("extra_variants", ["base", "grlo"])]
    custom = model_ids(cfg)
    return {"all": primary + released + extra + custom, "primary": primary, "released": released, "extra": extra,
            "custom": custom}[which]


def split_model_id(model_id: str) -> tuple[str, str]:
    if "--" not in model_id:
        raise GrloError(f"model id {model_id!r} must be '<source>--<variant>'", field="model")
    src, variant = model_id.split("--", 1)
    return src, variant


def resolve_eval_model(cfg: dict, model_id: str) -> dict:
    """Where an evaluated model's weights live (unprefixed path), how to template it and how to sample it."""
    src, variant = split_model_id(model_id)
    entry = registry.model(src)
    sampling: dict = {}
    chat = dict(entry.get("chat") or {})
    if entry.get("role") == "custom":  # evaluation.custom_models (grlo.models.custom)
        if variant != "custom":
            raise GrloError(f"custom model {src!r} is evaluated as {src}--custom, not {model_id!r}", field="model")
        sampling = dict(entry.get("sampling") or {})
        sampling["by_benchmark"] = entry.get("sampling_by_benchmark") or {}
        path, stage = weights_path(entry, src), None
    elif entry.get("role") == "released":
        modes = entry.get("modes") or {}
        if variant not in modes:
            raise GrloError(f"{src} has no mode {variant!r} (modes: {', '.join(modes)})", field="evaluation.released")
        chat.update(modes[variant].get("chat") or {})
        sampling = dict(modes[variant].get("sampling") or {})
        sampling["by_benchmark"] = modes[variant].get("sampling_by_benchmark") or {}
        path, stage = f"models/{src}", None
    elif variant == "base":
        path, stage = f"models/{src}", None
    elif variant == "rlvr" and rlvr_model_source(cfg, src) == "checkpoint":
        path, stage = f"models/{rlvr_checkpoint_model(cfg)}", None
    elif variant in STAGES:
        path, stage = f"checkpoints/{src}/{variant}/final", variant
    else:
        raise GrloError(f"unknown variant {variant!r} in {model_id!r} (allowed: {', '.join(VARIANTS)} or a released mode)", field="model")
    chat = {k: v for k, v in chat.items() if v is not None}  # None = the template's own default
    return {"source": src, "variant": variant, "path": path, "stage": stage, "chat": chat, "sampling": sampling}
