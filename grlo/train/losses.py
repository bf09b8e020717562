"""PPO losses with verl's definitions: clipped policy loss with dual-clip, clipped value loss, token-mean.

Aggregation takes an optional normaliser: by default each micro-batch aggregates over itself (verl 0.6.1's legacy
workers, which then scale by 1/grad_accum: see grlo.train.ppo_update); with `n_tokens` = the mini-batch's response
token count, micro-batches add up to exactly the mini-batch's token mean (`grlo.loss_agg_normalization`).
Checked against verl's own core_algos in tests/test_ppo_verl_oracle.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grlo.train.advantages import masked_mean


def agg_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean", n_tokens: float | None = None) -> torch.Tensor:
    """Aggregate a (batch, length) loss matrix, verl's four `loss_agg_mode`s. `n_tokens` overrides the token count
    of token-mean (the mini-batch-tokens normalisation); sequence means skip rows with no response token, as verl."""
    if mode == "token-mean":
        denom = mask.sum() if n_tokens is None else torch.as_tensor(n_tokens, dtype=loss_mat.dtype)
        return (loss_mat * mask).sum() / denom.clamp(min=1e-8)
    if mode == "seq-mean-token-sum":
        seq = (loss_mat * mask).sum(-1)
    elif mode == "seq-mean-token-mean":
        seq = (loss_mat * mask).sum(-1) / mask.sum(-1).clamp(min=1e-8)
    elif mode == "seq-mean-token-sum-norm":  # Dr. GRPO: token sum over a constant divisor, the padded length
        return (loss_mat * mask).sum() / mask.shape[-1]
    else:
        raise ValueError(f"unknown loss_agg_mode {mode!r}")
    has_tokens = (mask.sum(-1) > 0).to(seq.dtype)
    return masked_mean(seq, has_tokens)


@dataclass
class PolicyLossOut:
    loss: torch.Tensor
    clipfrac: torch.Tensor        # fraction of tokens where the ratio clip is active
    clipfrac_lower: torch.Tensor  # fraction of tokens where the dual clip (negative advantages) is active
    approx_kl: torch.Tensor       # mean(old_logp - logp): KL to the rollout policy (k1 estimator)


def policy_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.2,
    clip_ratio_c: float = 3.0,
    loss_agg_mode: str = "token-mean",
    n_tokens: float | None = None,
) -> PolicyLossOut:
    """PPO clipped surrogate with dual-clip (Ye et al. 2020) for negative advantages, as in verl."""
    if clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1, got {clip_ratio_c}")
    neg_kl = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    ratio = torch.exp(neg_kl)
    loss1 = -advantages * ratio
    loss2 = -advantages * torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    clipped = torch.maximum(loss1, loss2)
    loss3 = -advantages * clip_ratio_c
    dual = torch.minimum(loss3, clipped)
    per_token = torch.where(advantages < 0, dual, clipped)
    with torch.no_grad():
        clipfrac = masked_mean(torch.gt(loss2, loss1).to(loss1.dtype), mask)
        clipfrac_lower = masked_mean((torch.gt(clipped, loss3) & (advantages < 0)).to(loss1.dtype), mask)
        approx_kl = masked_mean(-neg_kl, mask)
    return PolicyLossOut(agg_loss(per_token, mask, loss_agg_mode, n_tokens), clipfrac, clipfrac_lower, approx_kl)


@dataclass
class ValueLossOut:
    loss: torch.Tensor
    clipfrac: torch.Tensor


def value_loss(
    vpreds: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float = 0.5,
    loss_agg_mode: str = "token-mean",
    n_tokens: float | None = None,
) -> ValueLossOut:
    """0.5 * max((v - R)^2, (clip(v, v_old +- c) - R)^2), aggregated (verl compute_value_loss)."""
    vclipped = old_values + torch.clamp(vpreds - old_values, -cliprange_value, cliprange_value)
    l1 = (vpreds - returns) ** 2
    l2 = (vclipped - returns) ** 2
    loss = 0.5 * agg_loss(torch.maximum(l1, l2), mask, loss_agg_mode, n_tokens)
    with torch.no_grad():
        clipfrac = masked_mean(torch.gt(l2, l1).to(l1.dtype), mask)
    return ValueLossOut(loss, clipfrac)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the categorical distribution given by logits (last dim)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
