"""Reward-model scoring across tokenizers.

The policy's response ids are decoded to text (`rm_response_text`); each (prompt chat, response text) pair is
re-templated with the REWARD MODEL's own chat template and tokenizer and scored in batches. This is what the paper's
setup needs (Skywork-Reward-V2-Llama-3.1-8B reads Llama-3.1 tokens; the Qwen3 policy writes Qwen tokens).

The input is built as verl 0.6.1's legacy reward-model worker builds it (`_switch_chat_template` in
verl/workers/fsdp_workers.py, the path train.sh selects): the response decoded WITHOUT skip_special_tokens and only
the policy's EOS string removed; the RM's chat template applied with add_generation_prompt=False; tokenised with
add_special_tokens=False (the template writes the one BOS); right-truncated to `max_length` (verl: the RM config's
max_length, else the rollout width max_prompt_length + max_response_length = 4096 in train.sh). The score is the RM
logit at the last real token.
"""

from __future__ import annotations

import logging

import torch

from grlo.device import empty_cuda_cache
from grlo.errors import GrloError
from grlo.models.local import check_model_dir

log = logging.getLogger("grlo.rewards.reward_model")


def rm_response_text(policy_tokenizer, response_ids: list[int]) -> str:
    """The response as verl's legacy RM path reads it: special tokens kept, only the EOS string removed."""
    text = policy_tokenizer.decode(response_ids, skip_special_tokens=False)
    eos = policy_tokenizer.eos_token
    return text.replace(eos, "") if eos else text


def rm_text(tokenizer, chat: list[dict], response: str) -> str:
    """The conversation as the RM reads it: the prompt turns + the response as the assistant turn."""
    convo = [{"role": m["role"], "content": m["content"]} for m in chat] + [{"role": "assistant", "content": response}]
    return tokenizer.apply_chat_template(convo, add_generation_prompt=False, tokenize=False)


class RewardScorer:
    def __init__(self, model_dir: str, device: torch.device | str = "cpu", batch_size: int = 8,
                 max_length: int | None = None, offload: bool = False, dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer  # heavy: transformers

        check_model_dir(model_dir, "reward model", tokenizer=True)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.chat_template is None:
            raise GrloError("the reward model's tokenizer has no chat template", path=model_dir, field="chat_template")
        if self.tokenizer.pad_token_id is None:
            raise GrloError("the reward model's tokenizer has no pad token", path=model_dir, field="pad_token")
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype)
        if self.model.config.num_labels != 1:
            raise GrloError(f"expected a scalar reward head (num_labels=1), got {self.model.config.num_labels}",
                            path=model_dir, field="num_labels")
        if self.model.config.pad_token_id is None:  # the classifier finds the last real token through pad_token_id
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.eval()
        self.tokenizer.padding_side = "right"  # positions then start at 0 for every row, as when scored alone
        self.device = torch.device(device)
        self.offload = offload and self.device.type != "cpu"  # train.sh: reward_model param_offload=True
        self.model.to("cpu" if self.offload else self.device)
        self.batch_size, self.max_length = batch_size, max_length

    def encode(self, chats: list[list[dict]], responses: list[str]) -> list[list[int]]:
        texts = [rm_text(self.tokenizer, c, r) for c, r in zip(chats, responses)]
        enc = self.tokenizer(texts, add_special_tokens=False)["input_ids"]  # verl: the template writes the BOS
        if self.max_length:
            over = sum(len(e) > self.max_length for e in enc)
            if over:
                log.warning("%d RM inputs longer than %d tokens: kept the first %d (verl: right truncation)", over,
                            self.max_length, self.max_length)
            enc = [e[: self.max_length] for e in enc]
        return enc

    @torch.no_grad()
    def score(self, chats: list[list[dict]], responses: list[str]) -> list[float]:
        if len(chats) != len(responses):
            raise ValueError("chats and responses differ in length")
        ids = self.encode(chats, responses)
        if self.offload:
            self.model.to(self.device)
        out: list[float] = []
        try:
            # longest first: batches of similar length waste less padding; results are put back in order
            order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
            scores = [0.0] * len(ids)
            for k in range(0, len(order), self.batch_size):
                chunk = order[k:k + self.batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, padding=True, return_tensors="pt")
                logits = self.model(input_ids=batch["input_ids"].to(self.device),
                                    attention_mask=batch["attention_mask"].to(self.device)).logits
                for i, v in zip(chunk, logits[:, 0].float().tolist()):
                    scores[i] = v
            out = scores
        finally:
            if self.offload:
                self.model.to("cpu")
                empty_cuda_cache()  # give the offloaded RM's blocks back before the rollout engine wakes up
        return out
