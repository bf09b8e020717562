"""The accelerator's memory between the models that share one GPU in turn (reward model, policy, vLLM engine)."""

from __future__ import annotations

import torch


def empty_cuda_cache() -> None:
    """Return the caching allocator's free blocks to the device (before vLLM wakes up, after the RM is offloaded):
    another allocator (vLLM's) or a later phase can then use them. No-op without CUDA."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
