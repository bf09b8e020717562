"""The rollout verl 0.6.1 lacks on CPU (grlo.train.verl.cpu registers it as `actor_rollout_ref.rollout.name=hf`).

verl 0.6.1's `_ROLLOUT_REGISTRY` has vllm and sglang only, and its `HFRollout` (HF `generate`) is abstract under the
0.6.1 `BaseRollout` interface (`resume`, `update_weights`, `release`; built from `(config, model_config,
device_mesh)`). This class completes it: it loads the policy from the model path as a plain HF model, receives the
actor's FSDP weights through `update_weights` before every generation (as vLLM does in the hybrid engine), generates
with verl's own `HFRollout._generate_minibatch`, and returns the prompts' `non_tensor_batch` with the sequences, as
vLLM's sync rollout does (the trainer's `raw_prompt` / `reward_model` columns travel with it).
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from verl import DataProto
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.hf_rollout import HFRollout


class HFGenerateRollout(HFRollout):
    def __init__(self, config, model_config, device_mesh):
        BaseRollout.__init__(self, config, model_config, device_mesh)  # HFRollout.__init__ predates this interface
        path = self.model_config.local_path or self.model_config.path
        self.module = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
        self.module.eval()

    async def resume(self, tags: list[str]):
        return None

    async def release(self):
        return None

    async def update_weights(self, weights, **kwargs):
        state = {name: t.detach().to(torch.float32) for name, t in weights}
        missing, unexpected = self.module.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if getattr(self.module.config, "tie_word_embeddings", False) else set()
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"rollout weight sync: missing {sorted(set(missing) - tied)}, "
                               f"unexpected {sorted(unexpected)}")

    def generate_sequences(self, prompts: DataProto) -> DataProto:
        # Sampling seeded by the step (verl seeds its rollout generator once, with 1000 + dp rank, and does not
        # checkpoint it): a resumed run samples what the uninterrupted one did from the step it resumes at.
        step = int(prompts.meta_info.get("global_steps", 0))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1000 + 1_000_003 * step + (1 if prompts.meta_info.get("validate") else 0))
            out = super().generate_sequences(prompts)
        self.module.eval()  # HFRollout leaves the module in train mode (it is the actor there; here it is a copy)
        out.non_tensor_batch = dict(prompts.non_tensor_batch)
        return out
