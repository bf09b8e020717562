"""GPU memory hygiene of the native engine, checked on CPU: gradients freed after the last mini-batch, padding per
micro-batch, the CUDA cache emptied before the rollout engine wakes up and after the reward model is offloaded."""

import json

import pytest
import torch

from grlo.train import ppo
from grlo.train.ppo_update import UpdateSettings, micro_batch, pad_response, update_critic


def batch_of(prompts, responses, pad=0):
    """[left-padded prompt | right-padded response] rows from token lists (values/returns random)."""
    P, R = max(map(len, prompts)), max(map(len, responses))
    ids = torch.full((len(prompts), P + R), pad)
    am = torch.zeros_like(ids)
    rm = torch.zeros(len(prompts), R, dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        ids[i, P - len(p):P] = torch.tensor(p)
        am[i, P - len(p):P] = 1
        ids[i, P:P + len(r)] = torch.tensor(r)
        am[i, P:P + len(r)] = 1
        rm[i, :len(r)] = 1
    g = torch.Generator().manual_seed(0)
    return {"input_ids": ids, "attention_mask": am, "response_mask": rm,
            "values": torch.randn(len(prompts), R, generator=g), "returns": torch.randn(len(prompts), R, generator=g)}


def test_micro_batch_is_cut_to_its_own_longest_prompt_and_response():
    b = batch_of([[5, 6], [7], [8, 9, 10, 11, 12], [13]], [[1, 2], [3], [4, 4, 4, 4, 4, 4], [2]])
    mb = micro_batch(b, slice(0, 2))  # rows 0-1: prompts <= 2, responses <= 2 of a 5 + 6 batch
    assert mb["input_ids"].tolist() == [[5, 6, 1, 2], [0, 7, 3, 0]]
    assert mb["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 1, 1, 0]]
    assert mb["response_mask"].tolist() == [[1, 1], [1, 0]]
    assert mb["values"].shape == (2, 2) and torch.equal(mb["values"], b["values"][:2, :2])
    full = micro_batch(b, slice(0, 4))
    assert torch.equal(full["input_ids"], b["input_ids"])  # the whole batch keeps its padding
    assert pad_response(mb["values"], 6).shape == (2, 6) and pad_response(mb["values"], 6)[:, 2:].abs().sum() == 0


def test_values_with_per_micro_batch_padding_equal_whole_batch_values():
    """Cutting padding changes no number: the critic's values of each micro-batch equal those of the padded batch."""
    from grlo.train.ppo_update import sequence_values

    torch.manual_seed(0)
    from transformers import LlamaConfig, LlamaForTokenClassification

    critic = LlamaForTokenClassification(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                     num_hidden_layers=1, num_attention_heads=2,
                                                     num_key_value_heads=2, num_labels=1)).eval()
    b = batch_of([[5, 6], [7], [8, 9, 10, 11, 12], [13]], [[1, 2], [3], [4, 4, 4, 4, 4, 4], [2]])
    with torch.no_grad():
        whole = sequence_values(critic, b["input_ids"], b["attention_mask"], b["response_mask"])
        parts = torch.cat([pad_response(sequence_values(critic, m["input_ids"], m["attention_mask"],
                                                        m["response_mask"]), 6)
                           for m in (micro_batch(b, slice(0, 2)), micro_batch(b, slice(2, 4)))])
    assert torch.allclose(whole, parts, atol=1e-5)


def test_gradients_are_freed_after_the_last_mini_batch():
    from transformers import LlamaConfig, LlamaForTokenClassification

    torch.manual_seed(0)
    critic = LlamaForTokenClassification(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                     num_hidden_layers=1, num_attention_heads=2,
                                                     num_key_value_heads=2, num_labels=1))
    b = batch_of([[5, 6], [7], [8, 9, 10], [13]], [[1, 2], [3], [4, 4, 4], [2]])
    opt = torch.optim.AdamW(critic.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in critic.parameters()]
    stats = update_critic(critic, opt, b, UpdateSettings(mini_batch_size=2, micro_batch_size=1))
    assert stats["critic/grad_norm"] > 0
    assert any(not torch.equal(a, p) for a, p in zip(before, critic.parameters()))  # it did update
    assert all(p.grad is None for p in critic.parameters())


def test_cuda_cache_emptied_before_wake_up_and_after_rm_offload(tmp_path, monkeypatch):
    """One trainer step with a recording rollout engine and reward-model offload: the cache is emptied right
    before wake_up() and right after the RM goes back to the CPU."""
    from grlo import config as config_mod
    from grlo.models.tiny import build_tiny_policy, build_tiny_reward_model
    from grlo.rewards import reward_model as rm_mod

    pol, rm = build_tiny_policy(tmp_path / "policy", seed=0), build_tiny_reward_model(tmp_path / "rm", seed=0)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": f"plan {i}"}]}) + "\n"
                               for i in range(4)))
    cfg = config_mod.load([config_mod.REPO_ROOT / "config" / "config.yaml",
                           config_mod.REPO_ROOT / "config" / "smoke.yaml"])
    cfg["grlo"].update({"train_batch_size": 4, "max_response_length": 4, "total_training_steps": 1})
    calls = []
    monkeypatch.setattr(ppo, "empty_cuda_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(rm_mod, "empty_cuda_cache", lambda: calls.append("empty_cache"))
    trainer = ppo.PPOTrainer(cfg, "tiny", str(prompts), str(pol), str(rm), str(tmp_path / "out"))

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self.inner, name)

    trainer.rollout = Recording(trainer.rollout)
    scorer = trainer.reward
    scorer.offload = True  # what a GPU run with reward.param_offload does; on CPU the moves are no-ops
    real_to = scorer.model.to
    monkeypatch.setattr(scorer.model, "to", lambda dev: (calls.append(f"rm.to({dev})"), real_to("cpu"))[1])
    trainer.step()
    assert calls == ["empty_cache", "wake_up", "sync_weights", "generate", "sleep", f"rm.to({trainer.device})",
                     "rm.to(cpu)", "empty_cache"]
    assert all(p.grad is None for p in trainer.actor.parameters())
    assert all(p.grad is None for p in trainer.critic.parameters())


@pytest.mark.parametrize("warmup,expect", [(0, [1, 2, 3]), (1, [1, 2, 3]), (2, [0, 1, 2]), (3, [0, 0, 1])])
def test_critic_warmup_counted_as_verl(warmup, expect):
    """verl updates the actor when critic_warmup <= global step (counted from 1): warm-up k skips k - 1 steps."""
    assert [ppo.actor_updates(n, warmup) for n in (1, 2, 3)] == expect


def test_lr_warmup_is_verl_constant_schedule_with_warmup():
    assert [ppo.lr_warmup_factor(n, 4) for n in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert ppo.lr_warmup_factor(0, 0) == 1.0  # no warm-up: the configured lr from the first update


def test_vllm_seed_is_seed_plus_rank():
    from grlo import config as config_mod

    g = config_mod.load([config_mod.REPO_ROOT / "config" / "config.yaml"])["grlo"]
    assert [ppo.vllm_settings(g, "/m", seed=7, n_procs=4, rank=r)[0]["seed"] for r in range(4)] == [7, 8, 9, 10]
