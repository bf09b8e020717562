"""Advantage estimation for GRLO's PPO: GAE with verl's semantics, and masked statistics.

Tensors are (batch, response_length); `response_mask` is 1 on response tokens (up to and including EOS) and 0 on
padding. The RM score is the reward of the last response token (see `token_level_rewards`).
"""

from __future__ import annotations

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    # clamp: an all-masked batch gives 0, not NaN
    denom = mask.sum() if dim is None else mask.sum(dim=dim)
    return masked_sum(x, mask, dim) / denom.clamp(min=1e-8)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance over the masked elements (Bessel-corrected like verl's masked_var)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over response tokens; positions outside the mask are zeroed."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def token_level_rewards(scores: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Place each sequence score on its last response token (verl's reward manager convention)."""
    rewards = torch.zeros_like(response_mask, dtype=scores.dtype)
    lengths = response_mask.sum(dim=-1).long()
    rows = torch.nonzero(lengths > 0).squeeze(-1)
    # last response index = position of the last 1 in the mask (responses are right-padded)
    last = response_mask.shape[-1] - 1 - torch.flip(response_mask, dims=[-1]).argmax(dim=-1)
    rewards[rows, last[rows]] = scores[rows]
    return rewards


@torch.no_grad()
def gae(
    token_rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, verl semantics (compute_gae_advantage_return).

    Walking backwards, masked positions neither contribute a TD error nor reset the running estimate: the next value
    and the running GAE are carried across them. The value after the last response token is 0 (episode ends).
    Returns (advantages, returns) with returns = advantages + values, both BEFORE any whitening; both are zero
    outside the mask.
    """
    if not (token_rewards.shape == values.shape == response_mask.shape):
        raise ValueError(f"shape mismatch: rewards {tuple(token_rewards.shape)}, values {tuple(values.shape)}, "
                         f"mask {tuple(response_mask.shape)}")
    mask = response_mask.to(values.dtype)
    next_value = torch.zeros_like(values[:, 0])
    running = torch.zeros_like(values[:, 0])
    out = torch.zeros_like(values)
    for t in reversed(range(values.shape[-1])):
        m = mask[:, t]
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        candidate = delta + gamma * lam * running
        next_value = m * values[:, t] + (1 - m) * next_value
        running = m * candidate + (1 - m) * running
        out[:, t] = running
    advantages = out * mask
    returns = (advantages + values) * mask
    return advantages, returns


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over response tokens (a critic-quality metric)."""
    var_ret = masked_var(returns, mask)
    if float(var_ret) == 0.0:
        return float("nan")
    return float(1.0 - masked_var(returns - values, mask) / var_ret)
