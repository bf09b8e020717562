"""TRL 1.16 GRPOTrainer's step arithmetic for the RLVR recipe (scale_rewards=group, loss_type=dapo, beta > 0, two-sided
clip epsilon, static entropy_coef), written out from trl/trainer/grpo_trainer.py: advantages from the
`sum_then_normalize` branch of `_generate_and_score_completions`, the loss from `_compute_loss` (dapo branch and the
entropy bonus). Pure torch, so the verl venv (tests/verl_env/test_rlvr_grpo_parity.py) can compare it with verl's
core_algos; tests/test_rlvr_grpo_trl.py checks it against TRL's own code in the main venv.
"""

import torch

EPS_CLIP, BETA, ENT = 0.3, 1e-4, 0.001  # General-Reasoner: clip_ratio, kl_loss_coef, entropy_coeff


def trl_advantages(rewards: torch.Tensor, g: int) -> torch.Tensor:
    grouped = rewards.view(-1, g)
    mean = grouped.mean(1).repeat_interleave(g)
    std = grouped.std(1).repeat_interleave(g)  # trl nanstd: unbiased
    return (rewards - mean) / (std + 1e-4)


def trl_per_token_loss(logp, old_logp, ref_logp, adv, eps=EPS_CLIP, beta=BETA):
    coef_1 = torch.exp(logp - old_logp)
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps)
    per_token = -torch.min(coef_1 * adv[:, None], coef_2 * adv[:, None])
    kl = torch.exp(ref_logp - logp) - (ref_logp - logp) - 1
    return per_token + beta * kl


def trl_window_loss(micro: list[dict], window_tokens: float, ent=ENT) -> torch.Tensor:
    """dapo: each micro-batch's token sum over the window's tokens (num_items_in_batch rescaled to one window), minus
    the entropy bonus as a token mean per micro-batch / gradient accumulation steps; summed over the window."""
    total = torch.tensor(0.0)
    for m in micro:
        per_token = trl_per_token_loss(m["logp"], m["old"], m["ref"], m["adv"])
        loss = (per_token * m["mask"]).sum() / window_tokens
        loss = loss - ent * (m["entropy"] * m["mask"]).sum() / m["mask"].sum() / len(micro)
        total = total + loss
    return total
