"""`style_mix`: our reward manager for verl 0.6.1 (registered under the name train.sh passes).

verl 0.6.1 with `reward_model.enable=True` scores each response with the reward model first (`rm_scores`: the RM
score on the last valid response token, zeros elsewhere) and then calls the reward manager on the batch. This manager
turns those scores into exactly what `grlo.rewards.style.StyleMix` computes for the native engine (the same code,
imported): total = w_rm * rm + w_truncated * truncated + w_repetition * repetition + w_length * length, placed on the
last valid response token (verl's convention). Each component is returned as `reward_extra_info` (verl logs it in
validation metrics) and appended, as a per-call mean, to a JSONL log that `grlo.train.verl.metrics` merges into
metrics.jsonl (`reward/<component>_mean`).

The response text is decoded with `skip_special_tokens=True` and "truncated" means the last valid token is not an
end-of-sequence id, both as the native engine does.

Validation: verl 0.6.1 validates without the reward model (rule-based rows only, see grlo.train.verl.data), so a
batch without `rm_scores` whose rows are `style: rule` is scored per sample by `compute_score`, the function verl
loaded from `custom_reward_function` (grlo.train.verl.plugin.rule_score: verl's own default_compute_score).
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace
from typing import Any

import torch
from transformers import GenerationConfig

from grlo.rewards.style import StyleMix
from grlo.train.rollout import eos_token_ids
from grlo.train.verl.compat import ensure_transformers_aliases

ensure_transformers_aliases()

from verl import DataProto  # noqa: E402
from verl.workers.reward_manager import register  # noqa: E402
from verl.workers.reward_manager.abstract import AbstractRewardManager  # noqa: E402

NAME = "style_mix"


def policy_eos_ids(tokenizer) -> set[int]:
    """EOS ids as the rollout stops on them: the tokenizer's and the model's generation config's."""
    gen = None
    path = getattr(tokenizer, "name_or_path", None)
    if path and os.path.isdir(path):
        try:
            gen = GenerationConfig.from_pretrained(path)
        except OSError:  # no generation_config.json: the tokenizer's EOS only
            gen = None
    return eos_token_ids(tokenizer, SimpleNamespace(generation_config=gen))


@register(NAME)
class StyleMixRewardManager(AbstractRewardManager):
    def __init__(self, tokenizer, num_examine: int, compute_score=None, reward_fn_key: str = "data_source",
                 weights: dict | None = None, max_response_length: int = 1, log_path: str | None = None,
                 eos_token_ids: list[int] | None = None, **unknown: Any) -> None:
        if unknown:  # a misspelt reward_model.reward_kwargs key would otherwise change nothing, silently
            raise TypeError(f"style_mix: unknown reward_kwargs {sorted(unknown)}")
        self.tokenizer = tokenizer
        self.num_examine = num_examine
        self.reward_fn_key = reward_fn_key
        self.compute_score = compute_score
        self.split = "val" if num_examine else "train"  # verl builds the validation manager with num_examine=1
        self.style = StyleMix.from_config({"weights": dict(weights or {})}, int(max_response_length))
        self.eos = set(eos_token_ids) if eos_token_ids else policy_eos_ids(tokenizer)
        self.log_path = log_path
        self.calls = 0

    def __call__(self, data: DataProto, return_dict: bool = False) -> torch.Tensor | dict[str, Any]:
        if "rm_scores" not in data.batch.keys():
            return self._rule_scores(data, return_dict)
        prompt_len = data.batch["prompts"].shape[-1]
        responses = data.batch["responses"]
        resp_mask = data.batch["attention_mask"][:, prompt_len:]
        lengths = resp_mask.sum(-1).long().tolist()
        rm = data.batch["rm_scores"].float().sum(-1).tolist()  # one non-zero entry per row
        texts, truncated = [], []
        for i, n in enumerate(lengths):
            ids = responses[i, :n].tolist()
            texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
            truncated.append(not (n and ids[-1] in self.eos))
        total, parts = self.style(rm, texts, lengths, truncated)

        reward = torch.zeros_like(responses, dtype=torch.float32)
        for i, n in enumerate(lengths):
            reward[i, max(n, 1) - 1] = total[i]
        self._log(total, parts)
        if not return_dict:
            return reward
        extra = {f"style_{k}": list(v) for k, v in parts.items()}
        return {"reward_tensor": reward, "reward_extra_info": extra}

    def _rule_scores(self, data: DataProto, return_dict: bool):
        """Rows with a ground truth (validation): verl's rule score per sample, on the last valid response token."""
        rm_info = data.non_tensor_batch.get("reward_model")
        styles = {(r or {}).get("style") for r in rm_info} if rm_info is not None else {None}
        if styles != {"rule"} or self.compute_score is None:
            raise RuntimeError("style_mix needs the reward model's scores (rm_scores) for `style: model` rows: set "
                               "reward_model.enable=True; only `style: rule` rows are scored without them")
        prompt_len = data.batch["prompts"].shape[-1]
        responses = data.batch["responses"]
        lengths = data.batch["attention_mask"][:, prompt_len:].sum(-1).long().tolist()
        sources = data.non_tensor_batch[self.reward_fn_key]
        extras = data.non_tensor_batch.get("extra_info")
        reward = torch.zeros_like(responses, dtype=torch.float32)
        scores = []
        for i, n in enumerate(lengths):
            text = self.tokenizer.decode(responses[i, :n].tolist(), skip_special_tokens=True)
            out = self.compute_score(data_source=sources[i], solution_str=text,
                                     ground_truth=rm_info[i]["ground_truth"],
                                     extra_info=extras[i] if extras is not None else None)
            score = float(out["score"] if isinstance(out, dict) else out)
            reward[i, max(n, 1) - 1] = score
            scores.append(score)
        self._log(scores, {})
        return {"reward_tensor": reward, "reward_extra_info": {}} if return_dict else reward

    def _log(self, total: list[float], parts: dict[str, list[float]]) -> None:
        self.calls += 1
        row = {"split": self.split, "call": self.calls, "n": len(total), "time": time.time(),
               "reward/score_mean": sum(total) / max(len(total), 1)}
        row.update({f"reward/{k}_mean": sum(v) / max(len(v), 1) for k, v in parts.items()})
        print(f"[style_mix] {self.split} call {self.calls}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items()
                                                                         if k.startswith("reward/")), flush=True)
        if self.log_path:
            os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
