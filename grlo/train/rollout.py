"""Rollout engines of the native PPO engine: transformers generate() on the live policy (CPU, tests, one small GPU)
and vLLM colocated with training (sleep mode, weights synced every step). Both take token ids, return token ids."""

from __future__ import annotations

import os

import torch

from grlo.train.batching import req
from grlo.train.distributed import dist_on
from grlo.train.prompts import left_pad


def eos_token_ids(tokenizer, model) -> set[int]:
    ids = set()
    gc = getattr(model, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
    for x in (e if isinstance(e, (list, tuple)) else [e]):
        if x is not None:
            ids.add(int(x))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


class HFRollout:
    """transformers generate() with the live policy: temperature/top-p/top-k exactly as configured, left padding."""

    def __init__(self, model, tokenizer, sampling: dict, max_new_tokens: int, batch_size: int):
        self.model, self.tok = model, tokenizer
        self.sampling, self.max_new_tokens, self.batch_size = sampling, max_new_tokens, batch_size
        self.eos = sorted(eos_token_ids(tokenizer, model))

    @torch.no_grad()
    def generate(self, prompt_ids: list[list[int]]) -> list[list[int]]:
        from transformers import GenerationConfig  # heavy: transformers

        gen_cfg = GenerationConfig(
            do_sample=True, temperature=self.sampling["temperature"], top_p=self.sampling["top_p"],
            top_k=0 if self.sampling["top_k"] in (-1, 0, None) else self.sampling["top_k"],
            max_new_tokens=self.max_new_tokens, pad_token_id=self.tok.pad_token_id, eos_token_id=self.eos,
            use_cache=True,  # the training config turns the KV cache off; generation needs it
        )
        was_training = self.model.training
        self.model.eval()
        dev = next(self.model.parameters()).device
        out: list[list[int]] = []
        for i in range(0, len(prompt_ids), self.batch_size):
            ids, mask = left_pad(prompt_ids[i:i + self.batch_size], self.tok.pad_token_id)
            # synced_gpus: sharded (FSDP2) ranks keep stepping together until every rank has finished
            gen = self.model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), generation_config=gen_cfg,
                                      synced_gpus=dist_on())
            for row in gen[:, ids.shape[1]:].tolist():
                cut = next((j + 1 for j, t in enumerate(row) if t in self.eos), len(row))
                out.append(row[:cut])
        self.model.train(was_training)
        return out

    def sync_weights(self, model) -> None:  # the live model is used: nothing to copy
        pass

    def sleep(self) -> None:
        pass

    def wake_up(self) -> None:
        pass


def vllm_settings(g: dict, model_dir: str, seed: int, n_procs: int, rank: int = 0) -> tuple[dict, dict]:
    """Map `grlo.rollout` to (vllm.LLM kwargs, SamplingParams kwargs); colocated with training (sleep mode).
    Each process's engine gets seed + rank: one engine per process samples its own share of the prompts."""
    r = req(g, "rollout")
    max_len = int(req(g, "max_prompt_length")) + int(req(g, "max_response_length"))
    llm = {
        "model": model_dir,
        "tensor_parallel_size": int(r.get("tensor_model_parallel_size", 1)),
        "gpu_memory_utilization": float(r.get("gpu_memory_utilization", 0.7)),
        "max_model_len": max_len,
        "dtype": r.get("dtype", "bfloat16"),
        "enable_sleep_mode": True,  # free KV cache and weights during the update phases
        "enforce_eager": bool(r.get("enforce_eager", False)),
        "enable_prefix_caching": bool(r.get("enable_prefix_caching", True)),
        "seed": seed + rank,
        "skip_tokenizer_init": False,
    }
    if n_procs > 1:
        llm["distributed_executor_backend"] = "external_launcher"  # one engine per torchrun process
    top_k = r.get("top_k", -1)
    sampling = {
        "n": int(r.get("n", 1)),
        "temperature": float(r.get("temperature", 1.0)),
        "top_p": float(r.get("top_p", 1.0)),
        "top_k": -1 if top_k in (None, 0, -1) else int(top_k),
        "max_tokens": int(req(g, "max_response_length")),
        "detokenize": False,
    }
    return llm, sampling


class VLLMRollout:  # pragma: no cover - needs a GPU and vLLM
    """vLLM colocated with training: sleeps during updates, wakes for rollout, gets the policy weights every step."""

    def __init__(self, llm_kwargs: dict, sampling_kwargs: dict, seed: int):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process: weights reachable
        from vllm import LLM, SamplingParams  # heavy: vllm

        self.llm = LLM(**llm_kwargs)
        self.sampling = SamplingParams(**sampling_kwargs)
        self.seed = seed
        self.asleep = False

    def generate(self, prompt_ids: list[list[int]]) -> list[list[int]]:
        from vllm import TokensPrompt  # heavy: vllm

        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids], self.sampling, use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]

    def sync_weights(self, model) -> None:
        sd = model.state_dict()
        runner_model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model

        def items():
            for k, v in sd.items():
                if hasattr(v, "full_tensor"):
                    v = v.full_tensor()
                yield k, v

        runner_model.load_weights(items())
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        if not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False
