"""The native engine's PPO mathematics against verl's own code (verl 0.6.1, the release the verl engine pins).

Every reference below is verl's function, imported (verl.trainer.ppo.core_algos, verl.utils.torch_functional,
the legacy reward-model worker's reward placement), run on random tensors and compared with ours. Nothing of verl is
transcribed here: if verl and we disagree, these tests fail.
"""

import pytest
import torch

from grlo.train.advantages import gae, masked_whiten, token_level_rewards
from grlo.train.distributed import global_whiten
from grlo.train.losses import agg_loss, policy_loss, value_loss
from grlo.train.ppo_update import UpdateSettings, _minibatch_updates

MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@pytest.fixture(scope="module")
def verl():
    """verl's modules, importable on CPU next to transformers 5 through the project's one compatibility shim."""
    from grlo.train.verl.compat import ensure_transformers_aliases

    ensure_transformers_aliases()
    try:
        import verl as verl_pkg
        from verl.trainer.ppo import core_algos
        from verl.utils import torch_functional as verl_F
    except ImportError as e:  # a hard failure: make test must run these against verl
        pytest.fail(f"verl 0.6.1 is not importable ({e}): install it as the Makefile's test environment does")
    assert verl_pkg.__version__ == "0.6.1"
    return core_algos, verl_F


def random_mask(gen, B, T, holes=True, empty_row=True):
    mask = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        n = int(torch.randint(2, T + 1, (1,), generator=gen))
        mask[b, :n] = 1.0
        if holes and n > 3:  # interior holes: verl skips them in GAE (observation tokens)
            mask[b, int(torch.randint(1, n - 1, (1,), generator=gen))] = 0.0
    if empty_row:
        mask[-1] = 0.0  # a response with no token
    return mask


def actor_config(clip_low=0.2, clip_high=0.2, clip_c=3.0):
    from omegaconf import OmegaConf

    return OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": clip_low, "clip_ratio_high": clip_high,
                             "clip_ratio_c": clip_c})


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 1.0)])
def test_gae_returns_and_whitening_equal_verl(verl, gamma, lam):
    core_algos, _ = verl
    gen = torch.Generator().manual_seed(int(gamma * 100 + lam * 10))
    B, T = 9, 17
    mask = random_mask(gen, B, T, empty_row=False)
    rewards = torch.randn(B, T, generator=gen, dtype=torch.float64) * mask  # dense rewards, incl. inside holes
    values = torch.randn(B, T, generator=gen, dtype=torch.float64)
    v_adv, v_ret = core_algos.compute_gae_advantage_return(rewards, values, mask, gamma, lam)
    adv, ret = gae(rewards, values, mask, gamma, lam)
    m = mask.bool()
    # verl whitens inside its GAE; we whiten after (single process: masked_whiten; several: global_whiten)
    assert torch.allclose(masked_whiten(adv, mask)[m], v_adv[m], atol=1e-6)
    assert torch.allclose(global_whiten(adv, mask)[m], v_adv[m], atol=1e-6)
    assert torch.allclose(ret[m], v_ret[m], atol=1e-9)  # returns before whitening, on response tokens


def test_whitening_equals_verl_masked_whiten(verl):
    _, verl_F = verl
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(6, 10, generator=gen, dtype=torch.float64) * 3 + 1
    mask = random_mask(gen, 6, 10)
    m = mask.bool()
    ref = verl_F.masked_whiten(x, mask)
    assert torch.allclose(masked_whiten(x, mask)[m], ref[m], atol=1e-9)
    assert torch.allclose(global_whiten(x, mask)[m], ref[m], atol=1e-9)


def test_reward_placement_equals_verl_reward_manager(verl):
    """The sequence score goes on the last response token, where verl's reward managers put it
    (reward_tensor[i, valid_response_length - 1]; the legacy RM worker's _expand_to_token_level agrees)."""
    import numpy as np
    from verl import DataProto
    from verl.workers.reward_manager.naive import NaiveRewardManager

    gen = torch.Generator().manual_seed(2)
    B, P, R = 6, 5, 8
    p_len = torch.randint(1, P + 1, (B,), generator=gen)
    r_len = torch.randint(1, R + 1, (B,), generator=gen)
    r_len[0] = R  # a response cut at the limit
    p_mask = (torch.arange(P).expand(B, P) >= (P - p_len).unsqueeze(1)).long()  # left-padded prompts
    r_mask = (torch.arange(R).expand(B, R) < r_len.unsqueeze(1)).long()  # right-padded responses
    scores = torch.randn(B, generator=gen)

    class Tok:
        def decode(self, ids, skip_special_tokens=True):
            return ""

    def score_fn(data_source, solution_str, ground_truth, extra_info):
        return float(scores[extra_info["index"]])

    data = DataProto.from_dict(
        tensors={"prompts": torch.ones(B, P, dtype=torch.long), "responses": torch.ones(B, R, dtype=torch.long),
                 "attention_mask": torch.cat([p_mask, r_mask], 1)},
        non_tensors={"data_source": np.array(["x"] * B, dtype=object),
                     "reward_model": np.array([{"style": "model", "ground_truth": ""}] * B, dtype=object),
                     "extra_info": np.array([{"index": i} for i in range(B)], dtype=object)})
    ref = NaiveRewardManager(Tok(), num_examine=0, compute_score=score_fn)(data)
    assert torch.equal(token_level_rewards(scores, r_mask), ref)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("clip", [(0.2, 0.2, 3.0), (0.2, 0.28, 3.0), (0.1, 0.3, 1.5)])
def test_policy_loss_equals_verl(verl, mode, clip):
    core_algos, _ = verl
    gen = torch.Generator().manual_seed(MODES.index(mode) * 10 + int(clip[1] * 100))
    B, T = 8, 12
    mask = random_mask(gen, B, T)
    old = torch.randn(B, T, generator=gen, dtype=torch.float64) - 2
    # ratios from ~0.1 to ~10 so every branch (clip high/low, dual clip) is taken
    logp = old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.9
    logp[0, 0] = old[0, 0] + 2.0  # ratio e^2 > c on a negative advantage: the dual clip is active
    logp.requires_grad_()
    adv = torch.randn(B, T, generator=gen, dtype=torch.float64) * 2
    adv[0, 0] = -1.0
    ref_loss, ref_metrics = core_algos.compute_policy_loss_vanilla(old, logp, adv, mask, mode, actor_config(*clip))
    ref_grad, = torch.autograd.grad(ref_loss, logp)
    out = policy_loss(logp, old, adv, mask, clip[0], clip[1], clip[2], mode)
    grad, = torch.autograd.grad(out.loss, logp)
    assert out.loss.item() == pytest.approx(ref_loss.item(), rel=1e-7, abs=1e-9)
    assert torch.allclose(grad, ref_grad, atol=1e-9)
    assert out.clipfrac.item() == pytest.approx(ref_metrics["actor/pg_clipfrac"], abs=1e-7)
    assert out.clipfrac_lower.item() == pytest.approx(ref_metrics["actor/pg_clipfrac_lower"], abs=1e-7)
    assert out.approx_kl.item() == pytest.approx(ref_metrics["actor/ppo_kl"], abs=1e-7)
    assert 0 < ref_metrics["actor/pg_clipfrac"] and 0 < ref_metrics["actor/pg_clipfrac_lower"]  # branches exercised


@pytest.mark.parametrize("mode", MODES)
def test_value_loss_equals_verl(verl, mode):
    core_algos, _ = verl
    gen = torch.Generator().manual_seed(len(mode))
    B, T = 7, 11
    mask = random_mask(gen, B, T)
    old = torch.randn(B, T, generator=gen, dtype=torch.float64)
    vpred = (old + torch.randn(B, T, generator=gen, dtype=torch.float64)).requires_grad_()
    ret = torch.randn(B, T, generator=gen, dtype=torch.float64)
    ref_loss, ref_clipfrac = core_algos.compute_value_loss(vpred, ret, old, mask, 0.5, mode)
    ref_grad, = torch.autograd.grad(ref_loss, vpred)
    out = value_loss(vpred, old, ret, mask, 0.5, mode)
    grad, = torch.autograd.grad(out.loss, vpred)
    assert out.loss.item() == pytest.approx(ref_loss.item(), rel=1e-7, abs=1e-9)
    assert torch.allclose(grad, ref_grad, atol=1e-9)
    assert out.clipfrac.item() == pytest.approx(ref_clipfrac.item(), abs=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_agg_loss_equals_verl(verl, mode):
    core_algos, _ = verl
    gen = torch.Generator().manual_seed(7)
    loss = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    mask = random_mask(gen, 9, 6)
    assert agg_loss(loss, mask, mode).item() == pytest.approx(core_algos.agg_loss(loss, mask, mode).item(), abs=1e-9)


# -- loss normalisation under gradient accumulation ------------------------------------------------------------------

class _Recorder(torch.optim.SGD):
    """SGD with lr 0 that keeps a copy of the gradient it was asked to apply (one per mini-batch)."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.grads = []

    def step(self, closure=None):
        self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


def _accumulate(normalization, mode, adv, old, mask, mini, micro, offset=0.3):
    """Run our update schedule (`_minibatch_updates`) with a parameter standing for the per-token log-probs."""
    B, R = mask.shape
    model = torch.nn.Module()
    model.logp = torch.nn.Parameter(old.clone() + offset)
    opt = _Recorder(model.parameters())
    s = UpdateSettings(mini_batch_size=mini, micro_batch_size=micro, grad_clip=1e9, loss_agg_mode=mode,
                       loss_normalization=normalization)
    batch = {"input_ids": torch.zeros(B, R + 2, dtype=torch.long),
             "attention_mask": torch.cat([torch.ones(B, 2, dtype=torch.long), mask.long()], 1),
             "response_mask": mask, "old_log_probs": old, "advantages": adv, "row": torch.arange(B)}
    losses = []

    def micro_step(mb, n_tok, scale):
        r = mb["response_mask"].shape[-1]  # the micro-batch's own width
        logp = model.logp[mb["row"]][:, :r]
        out = policy_loss(logp, mb["old_log_probs"], mb["advantages"], mb["response_mask"], loss_agg_mode=mode,
                          n_tokens=n_tok)
        (out.loss * scale).backward()
        losses.append(out.loss.item() * scale)

    _minibatch_updates(model, opt, batch, s, micro_step, "test")
    assert model.logp.grad is None  # gradients freed after the last mini-batch
    return opt.grads, losses


def _case(seed=0, B=12, R=9):
    gen = torch.Generator().manual_seed(seed)
    mask = random_mask(gen, B, R, holes=False, empty_row=False)
    old = torch.randn(B, R, generator=gen, dtype=torch.float64)
    adv = torch.randn(B, R, generator=gen, dtype=torch.float64)
    return adv, old, mask


@pytest.mark.parametrize("mode", MODES[:3])
def test_default_normalization_is_verl_legacy_mean_of_micro_batch_means(verl, mode):
    """Default: each micro-batch aggregated over itself, x 1/grad_accum (verl 0.6.1 dp_actor/dp_critic legacy)."""
    core_algos, _ = verl
    adv, old, mask = _case()
    mini, micro = 6, 2
    grads, _ = _accumulate("micro-batch-mean", mode, adv, old, mask, mini, micro)
    for k, start in enumerate(range(0, 12, mini)):
        logp = (old.clone() + 0.3).requires_grad_()
        total = 0
        for i in range(start, start + mini, micro):
            rows = slice(i, i + micro)
            loss, _ = core_algos.compute_policy_loss_vanilla(old[rows], logp[rows], adv[rows], mask[rows], mode,
                                                             actor_config())
            total = total + loss * (1 / (mini // micro))  # verl: loss_scale_factor = 1 / gradient_accumulation
        ref, = torch.autograd.grad(total, logp)
        assert torch.allclose(grads[k][0], ref, atol=1e-10)


def test_default_normalization_by_hand():
    """At ratio 1 the per-token loss is -A: the mini-batch loss is the mean over micro-batches of their token means."""
    adv, old, mask = _case(seed=3)
    _, losses = _accumulate("micro-batch-mean", "token-mean", adv, old, mask, 12, 4, offset=0.0)  # ratio 1
    micro_means = []
    for i in range(0, 12, 4):
        toks = [-adv[b, t].item() for b in range(i, i + 4) for t in range(9) if mask[b, t] == 1]
        micro_means.append(sum(toks) / len(toks))
    assert sum(losses) == pytest.approx(sum(micro_means) / 3, abs=1e-12)
    every = [-adv[b, t].item() for b in range(12) for t in range(9) if mask[b, t] == 1]
    assert abs(sum(losses) - sum(every) / len(every)) > 1e-6  # and it is not the mini-batch token mean


def test_mini_batch_tokens_normalization_is_the_mini_batch_token_mean(verl):
    core_algos, _ = verl
    adv, old, mask = _case(seed=5)
    grads, _ = _accumulate("mini-batch-tokens", "token-mean", adv, old, mask, 6, 2)
    for k, start in enumerate(range(0, 12, 6)):
        logp = (old.clone() + 0.3).requires_grad_()
        rows = slice(start, start + 6)
        loss, _ = core_algos.compute_policy_loss_vanilla(old[rows], logp[rows], adv[rows], mask[rows], "token-mean",
                                                         actor_config())
        ref, = torch.autograd.grad(loss, logp)
        assert torch.allclose(grads[k][0], ref, atol=1e-10)


def test_unknown_normalization_is_refused():
    from grlo.errors import GrloError

    with pytest.raises(GrloError, match="loss_agg_normalization"):
        UpdateSettings(mini_batch_size=2, micro_batch_size=1, loss_normalization="global")
    with pytest.raises(GrloError, match="token-mean"):
        UpdateSettings(mini_batch_size=2, micro_batch_size=1, loss_normalization="mini-batch-tokens",
                       loss_agg_mode="seq-mean-token-mean")
    with pytest.raises(GrloError, match="not supported by the native engine"):
        UpdateSettings(mini_batch_size=2, micro_batch_size=1, loss_agg_mode="seq-mean-token-sum-norm")
