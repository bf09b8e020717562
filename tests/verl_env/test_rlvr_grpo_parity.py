"""One GRPO step, the TRL engine's configuration against verl 0.6.1's `core_algos` on the same rewards and log-probs,
so switching `rlvr.engine` does not silently change the algorithm.

The TRL side is TRL 1.16's GRPOTrainer arithmetic for our config (scale_rewards=group, loss_type=dapo, beta>0,
epsilon=0.3, entropy_coef), written out in tests/verl_env/grpo_trl_reference.py (TRL is not in this venv);
tests/test_rlvr_grpo_trl.py checks those functions against TRL's own code in the main venv.

Equal: group normalisation up to the std epsilon, the k3 / low_var_kl KL term, the clipped surrogate, and the loss
of one micro-batch. Declared deviations (docs/rlvr.md, "Engines"): std epsilon (TRL 1e-4, verl 1e-6); verl's
dual-clip (clip_ratio_c=10, General-Reasoner's launcher) bounds the loss of negative-advantage tokens whose ratio
exceeds 10; with several micro-batches TRL weighs every token of the window equally, verl every micro-batch equally.
"""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

from verl.trainer.ppo import core_algos as C  # noqa: E402

from grpo_trl_reference import BETA, ENT, EPS_CLIP, trl_advantages, trl_per_token_loss, trl_window_loss  # noqa: E402

G = 4
# General-Reasoner rewards of 3 prompts x 4 rollouts: verified (1 - length penalty), wrong (0), no answer (-0.5);
# the last group has one reward for all rollouts (zero std)
REWARDS = torch.tensor([1.0, 0.95, 0.0, -0.5, 0.0, 0.0, 1.0, -0.5, 0.0, 0.0, 0.0, 0.0])


# ------------------------------------------------------------------------------------------------------ verl side
ACTOR = OmegaConf.create({"clip_ratio": EPS_CLIP, "clip_ratio_low": None, "clip_ratio_high": None, "clip_ratio_c": 10.0,
                          "policy_loss": {"loss_mode": "vanilla"}})


def verl_micro_loss(m: dict) -> torch.Tensor:
    """verl 0.6.1 dp_actor.update_policy for one micro-batch (use_kl_loss, entropy_coeff, token-mean)."""
    pg, _ = C.get_policy_loss_fn("vanilla")(m["old"], m["logp"], m["adv"][:, None].expand_as(m["logp"]), m["mask"],
                                            "token-mean", ACTOR)
    entropy = C.agg_loss(m["entropy"], m["mask"], "token-mean")
    kl = C.agg_loss(C.kl_penalty(m["logp"], m["ref"], "low_var_kl"), m["mask"], "token-mean")
    return pg - entropy * ENT + kl * BETA


def verl_window_loss(micro: list[dict]) -> torch.Tensor:
    return sum(verl_micro_loss(m) / len(micro) for m in micro)  # loss_scale_factor = 1 / gradient_accumulation


def verl_advantages(rewards: torch.Tensor, g: int, mask: torch.Tensor) -> torch.Tensor:
    lengths = mask.sum(1).long()
    token_rewards = torch.zeros_like(mask, dtype=torch.float32)
    token_rewards[torch.arange(len(rewards)), lengths - 1] = rewards  # verl puts the score on the last token
    index = np.array([i // g for i in range(len(rewards))], dtype=object)
    adv, _ = C.compute_grpo_outcome_advantage(token_rewards, mask, index, norm_adv_by_std_in_grpo=True)
    return adv


# --------------------------------------------------------------------------------------------------------- inputs
def batch(n: int, lengths: list[int], seed: int, ratio_spread: float = 0.2) -> dict:
    gen = torch.Generator().manual_seed(seed)
    T = max(lengths)
    mask = torch.tensor([[1.0] * k + [0.0] * (T - k) for k in lengths])
    old = -torch.rand(n, T, generator=gen) * 3
    logp = old + (torch.rand(n, T, generator=gen) - 0.5) * 2 * ratio_spread
    ref = old + (torch.rand(n, T, generator=gen) - 0.5) * 0.4
    entropy = torch.rand(n, T, generator=gen) * 2
    return {"logp": logp, "old": old, "ref": ref, "mask": mask, "entropy": entropy}


LENGTHS = [5, 7, 3, 6, 4, 7, 7, 2, 5, 6, 3, 7]


def test_group_normalised_advantages_agree_up_to_the_std_epsilon():
    mask = batch(12, LENGTHS, 0)["mask"]
    verl = verl_advantages(REWARDS, G, mask)
    trl = trl_advantages(REWARDS, G)
    # verl broadcasts the sequence advantage over the response tokens
    assert torch.equal(verl * mask, verl[:, :1] * mask)
    assert torch.allclose(verl[:, 0], trl, rtol=2e-4, atol=1e-6)
    assert not torch.equal(verl[:, 0], trl)  # the epsilons differ (1e-6 vs 1e-4): declared
    assert torch.all(verl[8:, 0] == 0) and torch.all(trl[8:] == 0)  # a zero-std group teaches nothing on both
    # both divide by the unbiased std
    g0 = REWARDS[:4]
    assert verl[0, 0].item() == pytest.approx(((g0[0] - g0.mean()) / (g0.std() + 1e-6)).item(), rel=1e-6)


def test_kl_term_is_the_same_k3_estimator():
    b = batch(12, LENGTHS, 1)
    verl = C.kl_penalty(b["logp"], b["ref"], "low_var_kl")
    trl = torch.exp(b["ref"] - b["logp"]) - (b["ref"] - b["logp"]) - 1
    assert torch.allclose(verl, trl, atol=1e-7)


def test_one_micro_batch_step_has_the_same_loss():
    b = batch(12, LENGTHS, 2)
    b["adv"] = trl_advantages(REWARDS, G)
    verl = verl_window_loss([b])
    trl = trl_window_loss([b], b["mask"].sum())
    assert verl.item() == pytest.approx(trl.item(), rel=1e-6, abs=1e-9)
    # ... and the same gradient with respect to the log-probs
    for fn in (lambda: verl_window_loss([b]), lambda: trl_window_loss([b], b["mask"].sum())):
        b["logp"].grad = None
        b["logp"].requires_grad_(True)
        fn().backward()
        b.setdefault("grads", []).append(b["logp"].grad.clone())
    assert torch.allclose(b["grads"][0], b["grads"][1], atol=1e-8)


def test_dual_clip_is_the_declared_difference():
    b = batch(12, LENGTHS, 3)
    b["adv"] = trl_advantages(REWARDS, G)
    # one negative-advantage token with ratio e^3 > clip_ratio_c = 10: verl caps its loss at -A * 10
    row = 3  # reward -0.5 in the first group: negative advantage
    assert b["adv"][row] < 0
    b["logp"][row, 0] = b["old"][row, 0] + 3.0
    verl_pg, _ = C.get_policy_loss_fn("vanilla")(b["old"], b["logp"], b["adv"][:, None].expand_as(b["logp"]),
                                                 b["mask"], "token-mean", ACTOR)
    trl_pg = (trl_per_token_loss(b["logp"], b["old"], b["ref"], b["adv"], beta=0.0) * b["mask"]).sum() / b["mask"].sum()
    diff = (trl_pg - verl_pg).item() * b["mask"].sum().item()
    want = (-b["adv"][row] * np.exp(3.0) - (-b["adv"][row] * 10.0)).item()
    assert diff == pytest.approx(want, rel=1e-5)


def test_several_micro_batches_weigh_tokens_differently_as_declared():
    b = batch(12, LENGTHS, 4)
    b["adv"] = trl_advantages(REWARDS, G)
    micro = [{k: v[i:i + 4] for k, v in b.items()} for i in (0, 4, 8)]
    tokens = b["mask"].sum()
    verl, trl = verl_window_loss(micro).item(), trl_window_loss(micro, tokens).item()
    assert verl != pytest.approx(trl, rel=1e-3)  # micro-batches of 21, 20 and 21 tokens
    # TRL: token-weighted mean of the micro-batches' token means; verl: their plain mean
    means = [((trl_per_token_loss(m["logp"], m["old"], m["ref"], m["adv"]) * m["mask"]).sum() / m["mask"].sum()).item()
             for m in micro]
    counts = [m["mask"].sum().item() for m in micro]
    ent = [(m["entropy"] * m["mask"]).sum().item() / m["mask"].sum().item() for m in micro]
    assert trl == pytest.approx(sum(x * c for x, c in zip(means, counts)) / sum(counts) - ENT * np.mean(ent), rel=1e-6)
    assert verl == pytest.approx(np.mean(means) - ENT * np.mean(ent), rel=1e-6)
    # equal token counts per micro-batch: the engines agree again
    same = batch(12, [5] * 12, 5)
    same["adv"] = b["adv"]
    micro = [{k: v[i:i + 4] for k, v in same.items()} for i in (0, 4, 8)]
    assert verl_window_loss(micro).item() == pytest.approx(trl_window_loss(micro, same["mask"].sum()).item(), rel=1e-6)
