"""The TRL side of the engine parity test (tests/verl_env/test_rlvr_grpo_parity.py): the arithmetic written out in
tests/verl_env/grpo_trl_reference.py is what TRL's own GRPOTrainer code computes for our RLVR configuration
(grlo.train.rlvr.grpo_kwargs of config/config.yaml: loss_type dapo, beta 1e-4, epsilon 0.3, entropy_coef 0.001)."""

import importlib.util
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from grlo import config as C
from grlo.train.rlvr import grpo_kwargs

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("grpo_trl_reference", ROOT / "tests" / "verl_env" / "grpo_trl_reference.py")
REF = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REF)


class _Acc:
    num_processes = 1
    sync_gradients = False

    def gather(self, x):
        return x.reshape(-1) if x.dim() == 0 else x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def trainer(tmp_path, ga: int):
    """GRPOTrainer's loss method on the attributes its __init__ sets from our GRPOConfig (no model is loaded)."""
    from trl import GRPOConfig, GRPOTrainer

    kwargs, _, _ = grpo_kwargs(C.load([str(ROOT / "config" / "config.yaml")]), "grlo-rlvr", tmp_path, on_gpu=False,
                               world_size=1)
    args = GRPOConfig(**kwargs)
    assert (args.loss_type, args.beta, args.epsilon, args.entropy_coef, args.scale_rewards) == \
        ("dapo", REF.BETA, REF.EPS_CLIP, REF.ENT, "group")
    t = object.__new__(GRPOTrainer)
    t.args = SimpleNamespace(**{k: getattr(args, k) for k in ("use_bias_correction_kl", "delta")},
                             steps_per_generation=ga)
    t.beta, t.loss_type, t.entropy_coef = args.beta, args.loss_type, args.entropy_coef
    t.epsilon_low = args.epsilon
    t.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    t.top_entropy_quantile, t.off_policy_mask_threshold = args.top_entropy_quantile, args.off_policy_mask_threshold
    t.importance_sampling_level, t.use_adaptive_entropy = args.importance_sampling_level, args.use_adaptive_entropy
    t._entropy_bonus_enabled = args.entropy_coef != 0.0
    t.use_vllm, t.aux_loss_enabled = False, False
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t.model = SimpleNamespace(training=True)
    t.accelerator = _Acc()
    t.current_gradient_accumulation_steps = ga
    return t


def batch(n, lengths, seed):
    gen = torch.Generator().manual_seed(seed)
    T = max(lengths)
    mask = torch.tensor([[1] * k + [0] * (T - k) for k in lengths])
    old = -torch.rand(n, T, generator=gen) * 3
    return {"mask": mask, "old": old, "logp": old + (torch.rand(n, T, generator=gen) - 0.5) * 0.4,
            "ref": old + (torch.rand(n, T, generator=gen) - 0.5) * 0.4, "entropy": torch.rand(n, T, generator=gen),
            "adv": torch.randn(n, generator=gen)}


def trl_loss(t, m, window_tokens):
    t._get_per_token_logps_and_entropies = lambda *a, **k: (m["logp"], m["entropy"], None)
    n, T = m["mask"].shape
    inputs = {"prompt_ids": torch.zeros(n, 1, dtype=torch.long), "prompt_mask": torch.ones(n, 1, dtype=torch.long),
              "completion_ids": torch.zeros(n, T, dtype=torch.long), "completion_mask": m["mask"],
              "advantages": m["adv"], "old_per_token_logps": m["old"], "ref_per_token_logps": m["ref"],
              "num_items_in_batch": torch.tensor(float(window_tokens))}
    return t._compute_loss(None, inputs)


def test_reference_loss_is_trls_own_compute_loss(tmp_path):
    b = batch(12, [5, 7, 3, 6, 4, 7, 7, 2, 5, 6, 3, 7], 0)
    b["mask"] = b["mask"].float()
    t = trainer(tmp_path, ga=1)
    assert trl_loss(t, b, b["mask"].sum()).item() == pytest.approx(REF.trl_window_loss([b], b["mask"].sum()).item(),
                                                                    rel=1e-6)
    # three micro-batches accumulated into one optimizer step (num_items_in_batch: the window's tokens)
    t = trainer(tmp_path, ga=3)
    micro = [{k: v[i:i + 4] for k, v in b.items()} for i in (0, 4, 8)]
    got = sum(trl_loss(t, m, b["mask"].sum()).item() for m in micro)
    assert got == pytest.approx(REF.trl_window_loss(micro, b["mask"].sum()).item(), rel=1e-6)


def test_reference_advantages_use_trls_std():
    from trl.trainer.utils import nanstd

    r = torch.tensor([1.0, 0.95, 0.0, -0.5, 0.0, 0.0, 1.0, -0.5])
    std = nanstd(r.view(-1, 4), dim=1).repeat_interleave(4)
    mean = r.view(-1, 4).mean(1).repeat_interleave(4)
    assert torch.allclose(REF.trl_advantages(r, 4), (r - mean) / (std + 1e-4))
