"""PPO math beyond the default settings (grlo/train/advantages.py, losses.py) against plain-python references: verl's
four loss aggregation modes, asymmetric and dual clipping, the log-ratio clamp, entropy, un-shifted whitening, the
masked statistics along a dimension, and the argument checks."""

import math

import pytest
import torch

from grlo.train.advantages import (explained_variance, gae, masked_mean, masked_sum, masked_var, masked_whiten,
                                   token_level_rewards)
from grlo.train.losses import agg_loss, entropy_from_logits, policy_loss, value_loss

LOSS = [[1.0, 2.0, 3.0, 4.0], [5.0, -6.0, 7.0, 8.0], [9.0, 9.0, 9.0, 9.0], [0.5, 1.5, -2.5, 3.5]]
MASK = [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]  # row 2 has no response token


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def reference_agg(loss, mask, mode, n_tokens=None):
    rows = [[l * m for l, m in zip(lr, mr)] for lr, mr in zip(loss, mask)]
    live = [i for i, mr in enumerate(mask) if sum(mr) > 0]
    if mode == "token-mean":
        return sum(map(sum, rows)) / (n_tokens if n_tokens is not None else sum(map(sum, mask)))
    if mode == "seq-mean-token-sum":
        return sum(sum(rows[i]) for i in live) / len(live)
    if mode == "seq-mean-token-mean":
        return sum(sum(rows[i]) / sum(mask[i]) for i in live) / len(live)
    if mode == "seq-mean-token-sum-norm":
        return sum(map(sum, rows)) / len(mask[0])
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean",
                                  "seq-mean-token-sum-norm"])
def test_agg_loss_modes_match_reference(mode):
    got = agg_loss(_t(LOSS), _t(MASK), mode).item()
    assert got == pytest.approx(reference_agg(LOSS, MASK, mode), abs=1e-12)


def test_agg_loss_token_count_override_and_empty_and_unknown_mode():
    assert agg_loss(_t(LOSS), _t(MASK), n_tokens=20).item() == pytest.approx(reference_agg(LOSS, MASK, "token-mean", 20))
    empty = torch.zeros(2, 3, dtype=torch.float64)
    assert agg_loss(_t([[1.0, 2, 3], [4, 5, 6]]), empty).item() == 0.0  # no token: 0, not NaN
    assert agg_loss(_t([[1.0, 2, 3], [4, 5, 6]]), empty, "seq-mean-token-mean").item() == 0.0
    with pytest.raises(ValueError, match="^unknown loss_agg_mode 'token-sum'$"):
        agg_loss(_t(LOSS), _t(MASK), "token-sum")


def test_policy_loss_asymmetric_clip_log_ratio_clamp_and_aggregation():
    # (advantage, ratio): clip-higher 0.28 lets 1.25 through for A > 0; 0.75 is clipped to 0.8 for A < 0
    adv = _t([[1.0, -1.0, 1.0, -2.0]])
    logp = torch.log(_t([[1.25, 0.75, 1.3, 2.5]]))
    mask = _t([[1.0, 1.0, 1.0, 1.0]])
    out = policy_loss(logp, torch.zeros_like(logp), adv, mask, 0.2, 0.28, 2.0)
    per_token = [-1.25, 0.8, -1.28, 4.0]  # last: -A * ratio = 5 > dual bound c * |A| = 4
    assert out.loss.item() == pytest.approx(sum(per_token) / 4, abs=1e-12)
    assert out.clipfrac.item() == pytest.approx(2 / 4)
    assert out.clipfrac_lower.item() == pytest.approx(1 / 4)
    for mode in ("seq-mean-token-sum", "seq-mean-token-sum-norm"):
        got = policy_loss(logp, torch.zeros_like(logp), adv, mask, 0.2, 0.28, 2.0, loss_agg_mode=mode).loss
        assert got.item() == pytest.approx(reference_agg([per_token], [[1, 1, 1, 1]], mode), abs=1e-12)
    got = policy_loss(logp, torch.zeros_like(logp), adv, mask, 0.2, 0.28, 2.0, n_tokens=8).loss
    assert got.item() == pytest.approx(sum(per_token) / 8, abs=1e-12)
    # a log-ratio of 50 is clamped to 20 before exp (no overflow); the KL estimate uses the clamped value
    far = policy_loss(_t([[50.0]]), _t([[0.0]]), _t([[-1.0]]), _t([[1.0]]), clip_ratio_c=3.0)
    assert far.loss.item() == pytest.approx(3.0) and far.approx_kl.item() == pytest.approx(-20.0)
    low = policy_loss(_t([[-50.0]]), _t([[0.0]]), _t([[1.0]]), _t([[1.0]]))
    assert low.approx_kl.item() == pytest.approx(20.0) and low.loss.item() == pytest.approx(-math.exp(-20.0))
    for bad in (1.0, 0.5):
        with pytest.raises(ValueError, match=f"^clip_ratio_c must be > 1, got {bad}$"):
            policy_loss(logp, logp, adv, mask, clip_ratio_c=bad)


def test_value_loss_clip_range_and_aggregation():
    v, old, ret = _t([[2.0, 0.1, -3.0]]), _t([[0.0, 0.0, 0.0]]), _t([[0.0, 0.0, -1.0]])
    mask = _t([[1.0, 1.0, 1.0]])
    # cliprange 1.0: clipped values 1.0, 0.1, -1.0 -> max((v-R)^2, (vc-R)^2) = 4, 0.01, 4
    out = value_loss(v, old, ret, mask, 1.0)
    assert out.loss.item() == pytest.approx(0.5 * (4 + 0.01 + 4) / 3)
    assert out.clipfrac.item() == 0.0  # the clipped loss is never the larger here
    out = value_loss(_t([[2.0]]), _t([[0.0]]), _t([[3.0]]), _t([[1.0]]), 0.5)  # clipped 0.5: (0.5-3)^2 > (2-3)^2
    assert out.loss.item() == pytest.approx(0.5 * 6.25) and out.clipfrac.item() == 1.0
    got = value_loss(v, old, ret, mask, 1.0, loss_agg_mode="seq-mean-token-sum").loss
    assert got.item() == pytest.approx(0.5 * (4 + 0.01 + 4))
    assert value_loss(v, old, ret, mask, 1.0, n_tokens=6).loss.item() == pytest.approx(0.5 * 8.01 / 6)


def test_entropy_from_logits():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0], [100.0, 0.0, 0.0, 0.0]])
    ref = torch.distributions.Categorical(logits=logits).entropy()
    got = entropy_from_logits(logits)
    assert torch.allclose(got, ref, atol=1e-6)
    assert got[0].item() == pytest.approx(math.log(4)) and got[2].item() == pytest.approx(0.0, abs=1e-6)
    assert entropy_from_logits(logits.to(torch.bfloat16)).dtype == torch.float32  # computed in float32


def test_masked_statistics_along_a_dimension_and_biased_variance():
    x, m = _t([[1.0, 2.0, 30.0], [4.0, 8.0, 16.0]]), _t([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert masked_sum(x, m, dim=-1).tolist() == [3.0, 28.0]
    assert masked_mean(x, m, dim=-1).tolist() == [1.5, pytest.approx(28 / 3)]
    assert masked_mean(x, m, dim=0).tolist() == [2.5, 5.0, 16.0]
    vals = [1.0, 2.0, 4.0, 8.0, 16.0]
    mu = sum(vals) / 5
    assert masked_var(x, m, unbiased=False).item() == pytest.approx(sum((v - mu) ** 2 for v in vals) / 5)
    assert masked_var(x, m).item() == pytest.approx(sum((v - mu) ** 2 for v in vals) / 4)
    one = _t([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert masked_var(x, one).item() == 0.0  # a single token: no Bessel correction


def test_two_token_variance_and_a_single_token_loss():
    two = _t([[1.0, 3.0]])
    assert masked_var(two, torch.ones_like(two)).item() == pytest.approx(2.0)  # Bessel: 2 / (2 - 1)
    assert agg_loss(_t([[1e6]]), _t([[1.0]])).item() == 1e6  # one token: divided by exactly 1


def test_whitening_without_shifting_the_mean():
    x, m = _t([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]]), _t([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    vals = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    std = torch.sqrt(vals.var(unbiased=True) + 1e-8)
    w = masked_whiten(x, m, shift_mean=False)
    assert torch.allclose(w[:, :2].flatten(), (vals - 2.5) / std + 2.5)
    assert w[:, 2].tolist() == [0.0, 0.0]
    assert torch.allclose(masked_whiten(x, m, eps=1.0)[:, :2].flatten(), (vals - 2.5) / torch.sqrt(vals.var() + 1.0))


def test_gae_shape_check_and_explained_variance_of_constant_returns():
    a = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^shape mismatch: rewards \(2, 3\), values \(2, 4\), mask \(2, 3\)$"):
        gae(a, torch.zeros(2, 4), a, 1.0, 1.0)
    assert math.isnan(explained_variance(_t([[1.0, 2.0]]), _t([[5.0, 5.0]]), _t([[1.0, 1.0]])))
    ev = explained_variance(_t([[1.0, 2.0, 0.0]]), _t([[2.0, 2.0, 4.0]]), _t([[1.0, 1.0, 1.0]]))
    # Var(R - V) / Var(R) with Bessel on both: R - V = 1, 0, 4
    r, d = [2.0, 2.0, 4.0], [1.0, 0.0, 4.0]

    def var(v):
        mu = sum(v) / len(v)
        return sum((x - mu) ** 2 for x in v) / (len(v) - 1)

    assert ev == pytest.approx(1.0 - var(d) / var(r))


def test_defaults_nonzero_old_log_probs_and_small_advantages():
    # verl's defaults: clip 0.2 both sides, dual clip 3, value clip 0.5
    adv = _t([[-1.0, -1.0, 0.5, 1.0]])
    old = _t([[0.3, -0.2, 0.1, -0.5]])
    ratio = _t([[0.5, 5.0, 1.1, 1.5]])
    logp = old + torch.log(ratio)
    out = policy_loss(logp, old, adv, torch.ones_like(adv))
    # A=-1, r=0.5: clipped to 0.8; A=-1, r=5: dual bound 3; A=0.5, r=1.1: unclipped -0.55; A=1, r=1.5: -1.2
    assert out.loss.item() == pytest.approx((0.8 + 3.0 - 0.55 - 1.2) / 4, abs=1e-12)
    assert out.approx_kl.item() == pytest.approx(-sum(math.log(r) for r in [0.5, 5.0, 1.1, 1.5]) / 4)
    assert out.clipfrac_lower.item() == pytest.approx(1 / 4)  # only A=-1, r=5; a small positive A is never dual
    v, vold, ret = _t([[2.0, -1.0]]), _t([[1.0, 0.0]]), _t([[0.0, 0.0]])
    # default clip 0.5 around the old values: 1.5 and -0.5 -> max((2-0)^2, 1.5^2) = 4, max(1, 0.25) = 1
    vl = value_loss(v, vold, ret, torch.ones_like(v))
    assert vl.loss.item() == pytest.approx(0.5 * (4.0 + 1.0) / 2) and vl.clipfrac.item() == 0.0
    vl = value_loss(_t([[2.0]]), _t([[1.0]]), _t([[3.0]]), _t([[1.0]]))  # clipped 1.5: (1.5-3)^2 > (2-3)^2
    assert vl.loss.item() == pytest.approx(0.5 * 2.25) and vl.clipfrac.item() == 1.0
    vl = value_loss(_t([[0.2]]), _t([[1.0]]), _t([[0.0]]), _t([[1.0]]))  # v below the old value: clipped up to 0.5
    assert vl.loss.item() == pytest.approx(0.5 * 0.25)


def test_rewards_on_a_non_square_batch_and_entropy_per_position():
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
    r = token_level_rewards(torch.tensor([1.0, 2.0, 3.0]), mask)
    assert r.tolist() == [[0, 1.0, 0, 0, 0], [0, 0, 0, 2.0, 0], [0, 0, 0, 0, 0]]
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))  # (batch, positions, vocab)
    ref = torch.distributions.Categorical(logits=logits).entropy()
    assert entropy_from_logits(logits).shape == (2, 3)
    assert torch.allclose(entropy_from_logits(logits), ref, atol=1e-6)
