"""Batch sizing and data order of GRLO's PPO, shared by both engines (native and verl): train/mini-batch sizes
checked against the prompt count and process count (adapted only when allowed), the step count (verl: last partial
batch dropped), and the seeded per-epoch order."""

from __future__ import annotations

import logging
from typing import Any

import torch

from grlo.errors import GrloError

log = logging.getLogger("grlo.train.ppo")


def grlo_section(cfg: dict) -> dict:
    g = cfg.get("grlo")
    if not isinstance(g, dict):
        raise GrloError("missing the `grlo:` section (see config/config.yaml)", field="grlo")
    return g


def req(g: dict, dotted: str):
    node: Any = g
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise GrloError("missing key", field=f"grlo.{dotted}")
        node = node[part]
    return node


def resolve_batch_sizes(g: dict, n_prompts: int, n_procs: int, source: str = "config") -> dict:
    """Check train/mini/micro batch sizes against the prompt set and the process count; adapt only if allowed."""
    train_bs = int(req(g, "train_batch_size"))
    mini = int(req(g, "actor.ppo_mini_batch_size"))
    cmini = int(g.get("critic", {}).get("ppo_mini_batch_size") or mini)
    adapted = None
    if train_bs > n_prompts:
        if not g.get("adapt_batch_size", False):
            raise GrloError(
                f"train_batch_size {train_bs} is larger than the {n_prompts} usable prompts: set "
                f"grlo.train_batch_size <= {n_prompts} (and ppo_mini_batch_size to divide it), or set "
                f"grlo.adapt_batch_size: true to shrink both proportionally", path=source, field="grlo.train_batch_size")
        # keep the number of optimizer steps per batch (train/mini) and round to the process count
        ratio = max(1, train_bs // max(mini, 1))
        new_train = (n_prompts // (ratio * n_procs)) * ratio * n_procs
        if new_train < n_procs * ratio:
            new_train, ratio = (n_prompts // n_procs) * n_procs, 1
        if new_train < 1:
            raise GrloError(f"{n_prompts} prompts cannot fill one batch on {n_procs} processes", path=source,
                            field="grlo.train_batch_size")
        adapted = {"train_batch_size": [train_bs, new_train], "ppo_mini_batch_size": [mini, new_train // ratio],
                   "critic.ppo_mini_batch_size": [cmini, new_train // ratio]}
        log.warning("adapt_batch_size: %d prompts < train_batch_size %d: train_batch_size %d -> %d, "
                    "ppo_mini_batch_size %d -> %d (same %d optimizer steps per batch)", n_prompts, train_bs, train_bs,
                    new_train, mini, new_train // ratio, ratio)
        train_bs, mini, cmini = new_train, new_train // ratio, new_train // ratio
    for name, val in (("actor.ppo_mini_batch_size", mini), ("critic.ppo_mini_batch_size", cmini)):
        if train_bs % val:
            raise GrloError(f"{val} does not divide train_batch_size {train_bs}", path=source, field=f"grlo.{name}")
        if val % n_procs:
            raise GrloError(f"{val} is not divisible by the {n_procs} processes", path=source, field=f"grlo.{name}")
    return {"train_batch_size": train_bs, "actor_mini": mini, "critic_mini": cmini, "adapted": adapted}


def total_steps(g: dict, n_prompts: int, train_bs: int) -> int:
    """verl: steps = (batches per epoch, last partial batch dropped) x total_epochs, unless total_training_steps."""
    if g.get("total_training_steps"):
        return int(g["total_training_steps"])
    return (n_prompts // train_bs) * int(req(g, "total_epochs"))


def epoch_order(n: int, epoch: int, seed: int, shuffle: bool) -> list[int]:
    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batch_indices(step: int, n: int, train_bs: int, seed: int, shuffle: bool) -> tuple[int, int, list[int]]:
    """Data position of global step `step` (0-based): (epoch, batch in epoch, prompt indices). Drops the last partial
    batch like verl's dataloader (drop_last=True)."""
    per_epoch = n // train_bs
    epoch, b = divmod(step, per_epoch)
    order = epoch_order(n, epoch, seed, shuffle)
    return epoch, b, order[b * train_bs:(b + 1) * train_bs]
