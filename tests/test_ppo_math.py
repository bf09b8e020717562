"""GAE, whitening and PPO losses against independent references and hand-computed cases."""

import math

import pytest
import torch

from grlo.train.advantages import explained_variance, gae, masked_whiten, token_level_rewards
from grlo.train.losses import agg_loss, policy_loss, value_loss


def reference_gae(rewards, values, mask, gamma, lam):
    """Plain-python GAE over the response positions of each row (masked positions are skipped)."""
    B, T = len(rewards), len(rewards[0])
    adv = [[0.0] * T for _ in range(B)]
    ret = [[0.0] * T for _ in range(B)]
    for b in range(B):
        idx = [t for t in range(T) if mask[b][t] == 1]
        running = 0.0
        for k in range(len(idx) - 1, -1, -1):
            t = idx[k]
            nxt = values[b][idx[k + 1]] if k + 1 < len(idx) else 0.0
            delta = rewards[b][t] + gamma * nxt - values[b][t]
            running = delta + gamma * lam * running
            adv[b][t] = running
            ret[b][t] = running + values[b][t]
    return adv, ret


def random_mask(gen, B, T):
    mask = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        n = int(torch.randint(0, T + 1, (1,), generator=gen))
        mask[b, :n] = 1.0
        if n > 3:  # an interior hole, like observation tokens in multi-turn data
            mask[b, int(torch.randint(1, n - 1, (1,), generator=gen))] = 0.0
    return mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 1.0), (1.0, 0.8)])
def test_gae_matches_reference(gamma, lam):
    gen = torch.Generator().manual_seed(int(gamma * 100 + lam * 10))
    B, T = 7, 13
    rewards = torch.randn(B, T, generator=gen, dtype=torch.float64)  # also on padding: must be ignored
    values = torch.randn(B, T, generator=gen, dtype=torch.float64)
    mask = random_mask(gen, B, T)
    adv, ret = gae(rewards, values, mask, gamma, lam)
    ref_adv, ref_ret = reference_gae(rewards.tolist(), values.tolist(), mask.tolist(), gamma, lam)
    assert torch.allclose(adv, torch.tensor(ref_adv, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.allclose(ret, torch.tensor(ref_ret, dtype=torch.float64), atol=1e-6, rtol=0)


def test_gae_gamma_lam_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[0.0, 0.0, 2.0, 0.0]], dtype=torch.float64)
    values = torch.tensor([[0.5, -1.0, 0.25, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    assert adv.tolist() == [[1.5, 3.0, 1.75, 0.0]]
    assert ret.tolist() == [[2.0, 2.0, 2.0, 0.0]]


def test_token_level_rewards_on_last_response_token():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    r = token_level_rewards(torch.tensor([1.0, 2.0, 3.0, 4.0]), mask)
    assert r.tolist() == [[0, 0, 1.0, 0], [2.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 4.0]]


def test_whiten_uses_response_tokens_only():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=torch.float64)
    w = masked_whiten(x, mask)
    vals = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expect = (vals - vals.mean()) / torch.sqrt(vals.var(unbiased=True) + 1e-8)
    assert torch.allclose(w[:, :2].flatten(), expect)
    assert w[:, 2].tolist() == [0.0, 0.0]


def test_policy_loss_hand_cases():
    # (advantage, ratio) -> per-token loss, by hand with eps 0.2 and dual-clip c = 3
    cases = [
        (1.0, 1.5, -1.2, True, False),   # positive A, ratio above 1+eps: clipped
        (1.0, 0.5, -0.5, False, False),  # positive A, ratio below 1-eps: unclipped (min of surrogates)
        (-1.0, 1.5, 1.5, False, False),  # negative A, ratio above 1+eps: unclipped, below the dual bound
        (-1.0, 5.0, 3.0, False, True),   # negative A, huge ratio: dual clip at c * |A|
        (-1.0, 0.5, 0.8, True, False),   # negative A, ratio below 1-eps: clipped
        (2.0, 1.1, -2.2, False, False),  # inside the trust region
    ]
    adv = torch.tensor([[c[0] for c in cases] + [7.0]], dtype=torch.float64)
    ratio = torch.tensor([[c[1] for c in cases] + [9.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0] * len(cases) + [0.0]], dtype=torch.float64)  # last token is padding
    old = torch.zeros_like(adv)
    out = policy_loss(torch.log(ratio), old, adv, mask, 0.2, 0.2, 3.0)
    expect = sum(c[2] for c in cases) / len(cases)
    assert out.loss.item() == pytest.approx(expect, abs=1e-12)
    assert out.clipfrac.item() == pytest.approx(sum(c[3] for c in cases) / len(cases))
    assert out.clipfrac_lower.item() == pytest.approx(sum(c[4] for c in cases) / len(cases))
    kl = -sum(math.log(c[1]) for c in cases) / len(cases)
    assert out.approx_kl.item() == pytest.approx(kl)


def test_policy_loss_gradient_zero_when_clipped():
    logp = torch.log(torch.tensor([[1.5, 1.1]], dtype=torch.float64)).requires_grad_()
    out = policy_loss(logp, torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[1.0, 1.0]], dtype=torch.float64),
                      torch.ones(1, 2, dtype=torch.float64))
    out.loss.backward()
    assert logp.grad[0, 0].item() == 0.0  # clipped token: no gradient
    assert logp.grad[0, 1].item() == pytest.approx(-1.1 / 2)  # d(-A r)/dlogp = -A r, token-mean over 2


def test_value_loss_hand_cases():
    # (v, v_old, R) -> max((v-R)^2, (clip(v)-R)^2), clip range 0.5
    cases = [(1.0, 0.0, 2.0, 2.25, True), (0.2, 0.0, 0.0, 0.04, False), (-1.0, 0.0, -2.0, 2.25, True),
             (1.0, 0.0, 0.0, 1.0, False)]
    v = torch.tensor([[c[0] for c in cases]], dtype=torch.float64)
    old = torch.tensor([[c[1] for c in cases]], dtype=torch.float64)
    ret = torch.tensor([[c[2] for c in cases]], dtype=torch.float64)
    out = value_loss(v, old, ret, torch.ones_like(v), 0.5)
    assert out.loss.item() == pytest.approx(0.5 * sum(c[3] for c in cases) / 4)
    assert out.clipfrac.item() == pytest.approx(0.5)


def test_microbatch_token_mean_accumulates_to_minibatch_mean():
    gen = torch.Generator().manual_seed(3)
    loss = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    mask = random_mask(gen, 6, 5)
    mask[0, 0] = 1.0
    full = agg_loss(loss, mask)
    n = mask.sum()
    parts = sum(agg_loss(loss[i:i + 2], mask[i:i + 2], n_tokens=n) for i in range(0, 6, 2))
    assert parts.item() == pytest.approx(full.item(), abs=1e-12)


def test_explained_variance():
    ret = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    mask = torch.ones_like(ret)
    assert explained_variance(ret, ret, mask) == pytest.approx(1.0)
    assert explained_variance(torch.zeros_like(ret), ret, mask) == pytest.approx(0.0)
    assert explained_variance(ret - 1.0, ret, mask) == pytest.approx(1.0)  # a constant offset explains all variance


def test_trainer_whitening_equals_masked_whiten_in_one_process():
    from grlo.train.distributed import global_whiten

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(5, 9, generator=gen, dtype=torch.float64)
    mask = random_mask(gen, 5, 9)
    mask[0, :3] = 1.0
    assert torch.allclose(global_whiten(x, mask), masked_whiten(x, mask), atol=1e-9)
