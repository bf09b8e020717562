"""Distributed helpers of the native PPO engine: process rank/size, all-reduces of metrics and whitening statistics.
Each is a no-op in a single CPU process (smoke, tests). FSDP2 wrapping is grlo.train.ppo_update.fsdp2_wrap (it
registers the update's log-prob forward); freeing cached GPU memory is grlo.device."""

from __future__ import annotations

import math

import torch


def dist_on() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if dist_on() else 1


def rank() -> int:
    return torch.distributed.get_rank() if dist_on() else 0


def all_sum(x: torch.Tensor) -> torch.Tensor:
    if dist_on():
        x = x.clone()
        torch.distributed.all_reduce(x)
    return x


def reduce_row(row: dict) -> dict:
    """Metrics of the whole batch from per-process rows: every process holds the same number of sequences, so a mean
    of per-process means is the batch mean for per-sequence metrics (token-weighted ones are approximated the same
    way); counts add up, maxima/minima and phase times take the extreme."""
    if not dist_on():
        return row
    keys = [k for k, v in row.items() if isinstance(v, (int, float)) and k not in ("step", "epoch", "batch_in_epoch")]
    vals = torch.tensor([float(row[k]) for k in keys], dtype=torch.float64,
                        device="cuda" if torch.cuda.is_available() else "cpu")
    mx, mn, sm = vals.clone(), vals.clone(), vals.clone()
    torch.distributed.all_reduce(mx, op=torch.distributed.ReduceOp.MAX)
    torch.distributed.all_reduce(mn, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(sm)
    out = dict(row)
    for i, k in enumerate(keys):
        if k.endswith("/max") or k.startswith(("time/", "gpu/")):
            out[k] = mx[i].item()
        elif k.endswith("/min"):
            out[k] = mn[i].item()
        elif k in ("perf/response_tokens", "perf/total_tokens", "perf/tokens_per_s"):
            out[k] = sm[i].item()
        else:
            out[k] = sm[i].item() / world_size()
    return out


def global_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """masked_whiten over the response tokens of the whole (all-rank) batch, Bessel-corrected like verl."""
    m = mask.to(torch.float64)
    stats = all_sum(torch.stack([(x.double() * m).sum(), (x.double() ** 2 * m).sum(), m.sum()]))
    s, ss, n = stats.tolist()
    mean = s / max(n, 1e-8)
    var = max(ss / max(n, 1e-8) - mean * mean, 0.0)
    if n > 1:
        var = var * n / (n - 1)
    return ((x - mean) / math.sqrt(var + eps)) * mask
