"""Prompts and batch tensors of the native PPO engine: the prompt file tokenised with the policy's chat template,
left-padded prompts, and the response mask (up to and including the first EOS)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grlo.errors import GrloError
from grlo.io import iter_jsonl


@dataclass
class PromptSet:
    messages: list[list[dict]]
    ids: list[list[int]]
    dropped_overlong: int = 0


def load_prompts(path: str, tokenizer, max_prompt_length: int, filter_overlong: bool = True) -> PromptSet:
    """Read the official prompt JSONL (`prompt` = a chat list) and tokenise with the policy's chat template."""
    msgs, ids, dropped = [], [], 0
    for lineno, row in iter_jsonl(path):
        chat = row.get("prompt")
        if isinstance(chat, str):
            chat = [{"role": "user", "content": chat}]
        if not isinstance(chat, list) or not chat or not all(isinstance(m, dict) and "content" in m for m in chat):
            raise GrloError("`prompt` must be a non-empty chat list of {role, content}", path=path,
                            field=f"line {lineno}")
        toks = chat_ids(tokenizer, chat)
        if len(toks) > max_prompt_length:
            if not filter_overlong:
                raise GrloError(f"prompt has {len(toks)} tokens > max_prompt_length {max_prompt_length}", path=path,
                                field=f"line {lineno}")
            dropped += 1
            continue
        msgs.append(chat)
        ids.append(toks)
    if not ids:
        raise GrloError("no usable prompts", path=path)
    return PromptSet(msgs, ids, dropped)


def chat_ids(tokenizer, chat: list[dict]) -> list[int]:
    out = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
    if isinstance(out, dict) or hasattr(out, "keys"):  # transformers 5 may return a BatchEncoding
        out = out["input_ids"]
    return list(out)



def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, L - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, L - len(s):] = 1
    return ids, mask


def response_mask_from(responses: torch.Tensor, eos_ids: set[int]) -> torch.Tensor:
    """1 up to and including the first EOS, 0 after (what the rollout engine returns as the response)."""
    is_eos = torch.zeros_like(responses, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= responses == e
    after = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # strictly after the first EOS
    return (~after).long()
