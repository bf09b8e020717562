"""`grlo train-grlo`: GRLO's PPO with a GAE critic and a reward model that has its own tokenizer.

One step reads top to bottom (see `PPOTrainer.step`):
  rollout (sample one response per prompt from the current policy)
  -> reward (decode, re-template with the RM's own chat template, score; style_mix)
  -> values (critic, per response token) and old log-probs (actor)
  -> advantages (GAE, verl semantics, whitened over response tokens)
  -> critic update (clipped value loss), then actor update (dual-clip PPO loss), mini/micro-batches.

Settings come from the `grlo:` config section, whose defaults mirror the official train.sh and verl's defaults
(see config/config.yaml). Single process on CPU or one GPU; several GPUs with `torchrun --nproc_per_node=N` (FSDP2,
each decoder layer sharded; see `launch_command`). Heavy libraries are imported lazily so that the pure update
helpers below can be imported by benchmarks/ppo_update_bench.py with torch alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from grlo.errors import GrloError
from grlo.train.advantages import explained_variance, gae, masked_mean, token_level_rewards
from grlo.train.losses import policy_loss, value_loss

log = logging.getLogger("grlo.train.ppo")


# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (no-ops in a single process)
# ----------------------------------------------------------------------------------------------------------------

def dist_on() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if dist_on() else 1


def rank() -> int:
    return torch.distributed.get_rank() if dist_on() else 0


def all_sum(x: torch.Tensor) -> torch.Tensor:
    if dist_on():
        x = x.clone()
        torch.distributed.all_reduce(x)
    return x


def reduce_row(row: dict) -> dict:
    """Metrics of the whole batch from per-process rows: every process holds the same number of sequences, so a mean
    of per-process means is the batch mean for per-sequence metrics (token-weighted ones are approximated the same
    way); counts add up, maxima/minima and phase times take the extreme."""
    if not dist_on():
        return row
    keys = [k for k, v in row.items() if isinstance(v, (int, float)) and k not in ("step", "epoch", "batch_in_epoch")]
    vals = torch.tensor([float(row[k]) for k in keys], dtype=torch.float64,
                        device="cuda" if torch.cuda.is_available() else "cpu")
    mx, mn, sm = vals.clone(), vals.clone(), vals.clone()
    torch.distributed.all_reduce(mx, op=torch.distributed.ReduceOp.MAX)
    torch.distributed.all_reduce(mn, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(sm)
    out = dict(row)
    for i, k in enumerate(keys):
        if k.endswith("/max") or k.startswith(("time/", "gpu/")):
            out[k] = mx[i].item()
        elif k.endswith("/min"):
            out[k] = mn[i].item()
        elif k in ("perf/response_tokens", "perf/total_tokens", "perf/tokens_per_s"):
            out[k] = sm[i].item()
        else:
            out[k] = sm[i].item() / world_size()
    return out


def global_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """masked_whiten over the response tokens of the whole (all-rank) batch, Bessel-corrected like verl."""
    m = mask.to(torch.float64)
    stats = all_sum(torch.stack([(x.double() * m).sum(), (x.double() ** 2 * m).sum(), m.sum()]))
    s, ss, n = stats.tolist()
    mean = s / max(n, 1e-8)
    var = max(ss / max(n, 1e-8) - mean * mean, 0.0)
    if n > 1:
        var = var * n / (n - 1)
    return ((x - mean) / math.sqrt(var + eps)) * mask


# ----------------------------------------------------------------------------------------------------------------
# Model forwards: per-response-token log-probs (actor) and values (critic)
# ----------------------------------------------------------------------------------------------------------------

def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding (what generate() uses), so log-probs match the rollout."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def _logp_entropy_chunk(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, temperature: float):
    logits = (hidden @ weight.t()).float()
    if temperature != 1.0:
        logits = logits / temperature
    logz = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logz
    probs = torch.softmax(logits, dim=-1)
    entropy = logz - (probs * logits).sum(-1)
    return logp, entropy


def sequence_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk_tokens: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob and entropy of each response token, shape (B, R); zero outside `response_mask`.

    The vocabulary projection runs only on response tokens, in chunks recomputed in backward (checkpoint), so the
    (tokens x vocab) logits never exist in full: with Qwen3's 152K vocabulary they would not fit otherwise.
    Under FSDP2 the same code runs as a registered forward method of the sharded root (`_fsdp2_wrap`), so that the
    root's parameters (embeddings, final norm, lm_head) are gathered for it and their gradients reduced.
    """
    fsdp_method = getattr(model, "_grlo_logprobs", None)
    if fsdp_method is not None:  # pragma: no cover - multi-process
        return fsdp_method(input_ids, attention_mask, response_mask, temperature, chunk_tokens)
    return _sequence_logprobs(model, input_ids, attention_mask, response_mask, temperature, chunk_tokens)


def _sequence_logprobs(model, input_ids, attention_mask, response_mask, temperature, chunk_tokens):
    R = response_mask.shape[-1]
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=input_ids, attention_mask=attention_mask,
                  position_ids=position_ids_from_mask(attention_mask), use_cache=False).last_hidden_state
    hidden = hidden[:, -R - 1:-1]  # the state before each response token predicts it
    targets = input_ids[:, -R:]
    sel = response_mask.bool()
    h, tgt = hidden[sel], targets[sel]
    weight = model.get_output_embeddings().weight
    logps, ents = [], []
    for i in range(0, h.shape[0], chunk_tokens):
        args = (h[i:i + chunk_tokens], weight, tgt[i:i + chunk_tokens], temperature)
        if torch.is_grad_enabled():
            lp, en = torch.utils.checkpoint.checkpoint(_logp_entropy_chunk, *args, use_reentrant=False)
        else:
            lp, en = _logp_entropy_chunk(*args)
        logps.append(lp)
        ents.append(en)
    out_lp = torch.zeros(response_mask.shape, dtype=torch.float32, device=hidden.device)
    out_en = torch.zeros_like(out_lp)
    if logps:
        out_lp = out_lp.masked_scatter(sel, torch.cat(logps))
        out_en = out_en.masked_scatter(sel, torch.cat(ents).detach())
    return out_lp, out_en


def sequence_values(critic, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Critic value of the state before each response token (verl: values[:, -R-1:-1]), shape (B, R)."""
    R = response_mask.shape[-1]
    out = critic(input_ids=input_ids, attention_mask=attention_mask,
                 position_ids=position_ids_from_mask(attention_mask), use_cache=False)
    return out.logits[:, -R - 1:-1, 0].float() * response_mask


# ----------------------------------------------------------------------------------------------------------------
# Updates: mini-batches (one optimizer step each) of micro-batches (gradient accumulation)
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class UpdateSettings:
    mini_batch_size: int            # sequences per optimizer step, per process
    micro_batch_size: int           # sequences per forward/backward, per process
    epochs: int = 1
    grad_clip: float = 1.0
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.2
    clip_ratio_c: float = 3.0
    cliprange_value: float = 0.5
    entropy_coeff: float = 0.0
    loss_agg_mode: str = "token-mean"
    temperature: float = 1.0
    autocast_dtype: torch.dtype | None = None


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _clip_grads(model, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if hasattr(norm, "full_tensor"):  # FSDP2 DTensor
        norm = norm.full_tensor()
    return float(norm)


def _minibatch_updates(model, optimizer, batch: dict, s: UpdateSettings, micro_step, name: str) -> list[float]:
    """verl's update schedule, shared by critic and actor: per epoch and mini-batch, accumulate `micro_step(sl, n_tok)`
    over micro-batches (losses normalised by the mini-batch's response-token count), clip, one optimizer step."""
    n = batch["input_ids"].shape[0]
    norms = []
    for _ in range(s.epochs):
        for mini in _split(n, s.mini_batch_size):
            optimizer.zero_grad(set_to_none=True)
            n_tok = float(all_sum(batch["response_mask"][mini].sum().double()))
            for mb in _split(mini.stop - mini.start, s.micro_batch_size):
                micro_step(slice(mini.start + mb.start, mini.start + mb.stop), n_tok)
            gn = _clip_grads(model, s.grad_clip)
            if math.isfinite(gn):
                optimizer.step()
            else:
                log.warning("%s grad norm is %s: step skipped", name, gn)
            norms.append(gn)
    return norms


def update_critic(critic, optimizer, batch: dict, s: UpdateSettings) -> dict:
    """Clipped value regression to the GAE returns; one optimizer step per mini-batch (verl dp_critic)."""
    critic.train()
    dev = batch["input_ids"].device
    ws = world_size()
    stats: dict[str, list[float]] = {"critic/vf_loss": [], "critic/vf_clipfrac": [], "critic/vpred_mean": []}

    def micro_step(sl: slice, n_tok: float) -> None:
        mask = batch["response_mask"][sl]
        with _autocast(dev, s.autocast_dtype):
            v = sequence_values(critic, batch["input_ids"][sl], batch["attention_mask"][sl], mask)
        out = value_loss(v, batch["values"][sl], batch["returns"][sl], mask, s.cliprange_value, s.loss_agg_mode, n_tok)
        (out.loss * ws).backward()  # FSDP averages gradients over processes; undo it for a global mean
        stats["critic/vf_loss"].append(out.loss.item())
        stats["critic/vf_clipfrac"].append(out.clipfrac.item())
        stats["critic/vpred_mean"].append(masked_mean(v.detach(), mask).item())

    stats["critic/grad_norm"] = _minibatch_updates(critic, optimizer, batch, s, micro_step, "critic")
    return _reduce_stats(stats, sums=("critic/vf_loss",))


def update_actor(actor, optimizer, batch: dict, s: UpdateSettings) -> dict:
    """PPO clipped surrogate (dual-clip, token-mean, no KL); one optimizer step per mini-batch (verl dp_actor)."""
    if s.entropy_coeff:
        # entropy from the chunked helper is detached; an entropy bonus would need it with grad
        raise GrloError("entropy_coeff != 0 is not supported (train.sh leaves verl's default 0)",
                        field="grlo.actor.entropy_coeff")
    actor.train()
    dev = batch["input_ids"].device
    ws = world_size()
    stats: dict[str, list[float]] = {"actor/pg_loss": [], "actor/pg_clipfrac": [], "actor/pg_clipfrac_lower": [],
                                     "actor/ppo_kl": [], "actor/entropy": []}

    def micro_step(sl: slice, n_tok: float) -> None:
        mask = batch["response_mask"][sl]
        with _autocast(dev, s.autocast_dtype):
            logp, ent = sequence_logprobs(actor, batch["input_ids"][sl], batch["attention_mask"][sl], mask, s.temperature)
        out = policy_loss(logp, batch["old_log_probs"][sl], batch["advantages"][sl], mask, s.clip_ratio_low,
                          s.clip_ratio_high, s.clip_ratio_c, s.loss_agg_mode, n_tok)
        (out.loss * ws).backward()
        stats["actor/pg_loss"].append(out.loss.item())
        stats["actor/pg_clipfrac"].append(out.clipfrac.item())
        stats["actor/pg_clipfrac_lower"].append(out.clipfrac_lower.item())
        stats["actor/ppo_kl"].append(out.approx_kl.item())
        stats["actor/entropy"].append(masked_mean(ent, mask).item())

    stats["actor/grad_norm"] = _minibatch_updates(actor, optimizer, batch, s, micro_step, "actor")
    return _reduce_stats(stats, sums=("actor/pg_loss",))


def _reduce_stats(stats: dict[str, list[float]], sums: tuple[str, ...] = ()) -> dict:
    """Mean over micro-batches, except losses normalised by the mini-batch token count: those add up per mini-batch."""
    out = {}
    for k, v in stats.items():
        if not v:
            continue
        out[k] = float(sum(v)) if k in sums else float(sum(v) / len(v))
    for k in sums:  # summed over all mini-batches and epochs: report the mean per optimizer step
        steps = len(stats.get(k.split("/")[0] + "/grad_norm", [])) or 1
        if k in out:
            out[k] /= steps
    return out


def make_optimizer(model, lr: float, betas=(0.9, 0.999), weight_decay: float = 0.01, eps: float = 1e-8):
    """AdamW with constant lr and no warm-up (verl optim defaults); fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"fused": True} if params and params[0].is_cuda else {}
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, eps=eps, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def grlo_section(cfg: dict) -> dict:
    g = cfg.get("grlo")
    if not isinstance(g, dict):
        raise GrloError("missing the `grlo:` section (see config/config.yaml)", field="grlo")
    return g


def _req(g: dict, dotted: str):
    node: Any = g
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise GrloError("missing key", field=f"grlo.{dotted}")
        node = node[part]
    return node


def resolve_batch_sizes(g: dict, n_prompts: int, n_procs: int, source: str = "config") -> dict:
    """Check train/mini/micro batch sizes against the prompt set and the process count; adapt only if allowed."""
    train_bs = int(_req(g, "train_batch_size"))
    mini = int(_req(g, "actor.ppo_mini_batch_size"))
    cmini = int(g.get("critic", {}).get("ppo_mini_batch_size") or mini)
    adapted = None
    if train_bs > n_prompts:
        if not g.get("adapt_batch_size", False):
            raise GrloError(
                f"train_batch_size {train_bs} is larger than the {n_prompts} usable prompts: set "
                f"grlo.train_batch_size <= {n_prompts} (and ppo_mini_batch_size to divide it), or set "
                f"grlo.adapt_batch_size: true to shrink both proportionally", path=source, field="grlo.train_batch_size")
        # keep the number of optimizer steps per batch (train/mini) and round to the process count
        ratio = max(1, train_bs // max(mini, 1))
        new_train = (n_prompts // (ratio * n_procs)) * ratio * n_procs
        if new_train < n_procs * ratio:
            new_train, ratio = (n_prompts // n_procs) * n_procs, 1
        if new_train < 1:
            raise GrloError(f"{n_prompts} prompts cannot fill one batch on {n_procs} processes", path=source,
                            field="grlo.train_batch_size")
        adapted = {"train_batch_size": [train_bs, new_train], "ppo_mini_batch_size": [mini, new_train // ratio],
                   "critic.ppo_mini_batch_size": [cmini, new_train // ratio]}
        log.warning("adapt_batch_size: %d prompts < train_batch_size %d: train_batch_size %d -> %d, "
                    "ppo_mini_batch_size %d -> %d (same %d optimizer steps per batch)", n_prompts, train_bs, train_bs,
                    new_train, mini, new_train // ratio, ratio)
        train_bs, mini, cmini = new_train, new_train // ratio, new_train // ratio
    for name, val in (("actor.ppo_mini_batch_size", mini), ("critic.ppo_mini_batch_size", cmini)):
        if train_bs % val:
            raise GrloError(f"{val} does not divide train_batch_size {train_bs}", path=source, field=f"grlo.{name}")
        if val % n_procs:
            raise GrloError(f"{val} is not divisible by the {n_procs} processes", path=source, field=f"grlo.{name}")
    return {"train_batch_size": train_bs, "actor_mini": mini, "critic_mini": cmini, "adapted": adapted}


def total_steps(g: dict, n_prompts: int, train_bs: int) -> int:
    """verl: steps = (batches per epoch, last partial batch dropped) x total_epochs, unless total_training_steps."""
    if g.get("total_training_steps"):
        return int(g["total_training_steps"])
    return (n_prompts // train_bs) * int(_req(g, "total_epochs"))


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class PromptSet:
    messages: list[list[dict]]
    ids: list[list[int]]
    dropped_overlong: int = 0


def load_prompts(path: str, tokenizer, max_prompt_length: int, filter_overlong: bool = True) -> PromptSet:
    """Read the official prompt JSONL (`prompt` = a chat list) and tokenise with the policy's chat template."""
    from grlo.io import iter_jsonl

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


def epoch_order(n: int, epoch: int, seed: int, shuffle: bool) -> list[int]:
    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batch_indices(step: int, n: int, train_bs: int, seed: int, shuffle: bool) -> tuple[int, int, list[int]]:
    """Data position of global step `step` (0-based): (epoch, batch in epoch, prompt indices). Drops the last partial
    batch like verl's dataloader (drop_last=True)."""
    per_epoch = n // train_bs
    epoch, b = divmod(step, per_epoch)
    order = epoch_order(n, epoch, seed, shuffle)
    return epoch, b, order[b * train_bs:(b + 1) * train_bs]


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


# ----------------------------------------------------------------------------------------------------------------
# Rollout back-ends
# ----------------------------------------------------------------------------------------------------------------

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
        from transformers import GenerationConfig

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


def vllm_settings(g: dict, model_dir: str, seed: int, n_procs: int) -> tuple[dict, dict]:
    """Map `grlo.rollout` to (vllm.LLM kwargs, SamplingParams kwargs); colocated with training (sleep mode)."""
    r = _req(g, "rollout")
    max_len = int(_req(g, "max_prompt_length")) + int(_req(g, "max_response_length"))
    llm = {
        "model": model_dir,
        "tensor_parallel_size": int(r.get("tensor_model_parallel_size", 1)),
        "gpu_memory_utilization": float(r.get("gpu_memory_utilization", 0.7)),
        "max_model_len": max_len,
        "dtype": r.get("dtype", "bfloat16"),
        "enable_sleep_mode": True,  # free KV cache and weights during the update phases
        "enforce_eager": bool(r.get("enforce_eager", False)),
        "enable_prefix_caching": bool(r.get("enable_prefix_caching", True)),
        "seed": seed,
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
        "max_tokens": int(_req(g, "max_response_length")),
        "detokenize": False,
    }
    return llm, sampling


class VLLMRollout:  # pragma: no cover - needs a GPU and vLLM
    """vLLM colocated with training: sleeps during updates, wakes for rollout, gets the policy weights every step."""

    def __init__(self, llm_kwargs: dict, sampling_kwargs: dict, seed: int):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process: weights reachable
        from vllm import LLM, SamplingParams

        self.llm = LLM(**llm_kwargs)
        self.sampling = SamplingParams(**sampling_kwargs)
        self.seed = seed
        self.asleep = False

    def generate(self, prompt_ids: list[list[int]]) -> list[list[int]]:
        from vllm import TokensPrompt

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


# ----------------------------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------------------------

DETERMINISTIC_METRICS_EXCLUDE = ("time/", "perf/", "gpu/")


@dataclass
class RunState:
    step: int = 0                   # optimizer-step batches completed
    metrics: list[dict] = field(default_factory=list)


class PPOTrainer:
    def __init__(self, cfg: dict, backbone: str, prompts_path: str, policy_init: str, reward_model: str,
                 output_dir: str, config_source: str = "config"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from grlo.rewards.reward_model import RewardScorer
        from grlo.rewards.style import StyleMix

        self.cfg, self.g = cfg, grlo_section(cfg)
        self.backbone, self.output_dir = backbone, Path(output_dir)
        self.source = config_source
        g = self.g
        self.seed = int(g.get("seed", cfg.get("seed", 0)))
        self.device = _pick_device(g)
        dtype_name = g.get("param_dtype", "float32")
        self.param_dtype = _DTYPES[dtype_name]
        compute = g.get("compute_dtype")
        self.autocast_dtype = _DTYPES[compute] if (compute and self.device.type == "cuda"
                                                   and _DTYPES[compute] != self.param_dtype) else None

        torch.manual_seed(self.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(policy_init)
        if self.tokenizer.pad_token_id is None:
            raise GrloError("the policy tokenizer has no pad token", path=policy_init, field="tokenizer")
        self.prompts = load_prompts(prompts_path, self.tokenizer, int(_req(g, "max_prompt_length")),
                                    bool(g.get("filter_overlong_prompts", True)))
        if self.prompts.dropped_overlong:
            log.info("filtered %d prompts longer than max_prompt_length", self.prompts.dropped_overlong)
        self.n_procs = world_size()
        self.bs = resolve_batch_sizes(g, len(self.prompts.ids), self.n_procs, config_source)
        self.total_steps = total_steps(g, len(self.prompts.ids), self.bs["train_batch_size"])

        gc_on = bool(_req(g, "actor.gradient_checkpointing"))
        self.actor = AutoModelForCausalLM.from_pretrained(policy_init, dtype=self.param_dtype).to(self.device)
        torch.manual_seed(self.seed + 1)  # the critic's fresh value head
        self.critic = load_critic(policy_init, self.param_dtype).to(self.device)
        for m, on in ((self.actor, gc_on), (self.critic, bool(_req(g, "critic.gradient_checkpointing")))):
            m.config.use_cache = False
            if on:
                m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.n_procs > 1:  # pragma: no cover - multi-GPU
            _fsdp2_wrap(self.actor, self.autocast_dtype)
            _fsdp2_wrap(self.critic, self.autocast_dtype)
        a, c = g["actor"], g["critic"]
        self.actor_opt = make_optimizer(self.actor, float(a["lr"]), a.get("betas", (0.9, 0.999)),
                                        float(a.get("weight_decay", 0.01)))
        self.critic_opt = make_optimizer(self.critic, float(c["lr"]), c.get("betas", (0.9, 0.999)),
                                         float(c.get("weight_decay", 0.01)))
        r = g["rollout"]
        self.sampling = {"temperature": float(r["temperature"]), "top_p": float(r["top_p"]),
                         "top_k": r.get("top_k", -1)}
        self.max_response_length = int(_req(g, "max_response_length"))
        if r.get("engine", "hf") == "vllm":  # pragma: no cover - GPU only
            import importlib.util

            if self.device.type != "cuda" or importlib.util.find_spec("vllm") is None:
                raise GrloError("rollout engine vllm needs a GPU and the vllm package (the GPU image); on CPU set "
                                "grlo.rollout.engine: hf", path=config_source, field="grlo.rollout.engine")
            llm_kw, samp_kw = vllm_settings(g, policy_init, self.seed, self.n_procs)
            self.rollout = VLLMRollout(llm_kw, samp_kw, self.seed)
        else:
            self.rollout = HFRollout(self.actor, self.tokenizer, self.sampling, self.max_response_length,
                                     int(r.get("batch_size", 64)))
        rw = g["reward"]
        self.reward = RewardScorer(reward_model, device=self.device, batch_size=int(rw.get("micro_batch_size", 8)),
                                   max_length=rw.get("max_length"), offload=bool(rw.get("param_offload", False)),
                                   dtype=_DTYPES[rw.get("dtype", dtype_name)])
        self.style = StyleMix.from_config(rw.get("style_mix", {}), self.max_response_length)
        self.upd_actor = UpdateSettings(
            mini_batch_size=self.bs["actor_mini"] // self.n_procs,
            micro_batch_size=int(a["ppo_micro_batch_size_per_gpu"]), epochs=int(a.get("ppo_epochs", 1)),
            grad_clip=float(a.get("grad_clip", 1.0)), clip_ratio_low=float(a.get("clip_ratio_low", a["clip_ratio"])),
            clip_ratio_high=float(a.get("clip_ratio_high", a["clip_ratio"])),
            clip_ratio_c=float(a.get("clip_ratio_c", 3.0)), entropy_coeff=float(a.get("entropy_coeff", 0.0)),
            loss_agg_mode=a.get("loss_agg_mode", "token-mean"), temperature=self.sampling["temperature"],
            autocast_dtype=self.autocast_dtype)
        self.upd_critic = UpdateSettings(
            mini_batch_size=self.bs["critic_mini"] // self.n_procs,
            micro_batch_size=int(c["ppo_micro_batch_size_per_gpu"]), epochs=int(c.get("ppo_epochs", 1)),
            grad_clip=float(c.get("grad_clip", 1.0)), cliprange_value=float(c.get("cliprange_value", 0.5)),
            loss_agg_mode=a.get("loss_agg_mode", "token-mean"), autocast_dtype=self.autocast_dtype)
        self.state = RunState()
        self.eos = set(eos_token_ids(self.tokenizer, self.actor))

    # -- one PPO step ---------------------------------------------------------------------------------------------
    def step(self) -> dict:
        g, step = self.g, self.state.step
        torch.manual_seed(self.seed * 1_000_003 + step * 101 + rank())  # per-step seed: resume-exact sampling
        t0 = time.perf_counter()
        epoch, b, idx = batch_indices(step, len(self.prompts.ids), self.bs["train_batch_size"], self.seed,
                                      bool(g.get("data_shuffle", True)))
        per = len(idx) // self.n_procs
        idx = idx[rank() * per:(rank() + 1) * per]
        prompt_ids = [self.prompts.ids[i] for i in idx]
        chats = [self.prompts.messages[i] for i in idx]
        timing = {}

        # 1. rollout
        t = time.perf_counter()
        self.rollout.wake_up()
        self.rollout.sync_weights(self.actor)
        responses = self.rollout.generate(prompt_ids)
        self.rollout.sleep()
        timing["time/generate"] = time.perf_counter() - t

        # 2. reward: the RM reads text in its own chat template
        t = time.perf_counter()
        texts = [self.tokenizer.decode(r, skip_special_tokens=True) for r in responses]
        truncated = [not (len(r) and r[-1] in self.eos) for r in responses]
        rm_scores = self.reward.score(chats, texts)
        total, parts = self.style(rm_scores, texts, [len(r) for r in responses], truncated)
        timing["time/reward"] = time.perf_counter() - t

        # 3. batch tensors: [left-padded prompt | right-padded response]
        batch = self._make_batch(prompt_ids, responses)
        scores = torch.tensor(total, dtype=torch.float32, device=self.device)

        # 4. values and old log-probs (no grad)
        t = time.perf_counter()
        with torch.no_grad(), _autocast(self.device, self.autocast_dtype):
            self.critic.eval()
            batch["values"] = self._chunked(lambda sl: sequence_values(
                self.critic, batch["input_ids"][sl], batch["attention_mask"][sl], batch["response_mask"][sl]),
                self.upd_critic.micro_batch_size, batch)
            self.actor.eval()
            batch["old_log_probs"] = self._chunked(lambda sl: sequence_logprobs(
                self.actor, batch["input_ids"][sl], batch["attention_mask"][sl], batch["response_mask"][sl],
                self.sampling["temperature"])[0], self.upd_actor.micro_batch_size, batch)
        timing["time/values_logprobs"] = time.perf_counter() - t

        # 5. advantages: GAE, then whitening over all response tokens of the batch
        mask = batch["response_mask"].float()
        rewards = token_level_rewards(scores, mask)
        adv, ret = gae(rewards, batch["values"], mask, float(g["gamma"]), float(g["lam"]))
        batch["advantages"] = global_whiten(adv, mask) if g.get("norm_adv", True) else adv
        batch["returns"] = ret

        # 6. updates: critic first, actor after the critic warm-up (verl order)
        t = time.perf_counter()
        metrics = update_critic(self.critic, self.critic_opt, batch, self.upd_critic)
        timing["time/update_critic"] = time.perf_counter() - t
        t = time.perf_counter()
        if step >= int(g.get("critic_warmup", 0)):
            metrics.update(update_actor(self.actor, self.actor_opt, batch, self.upd_actor))
        timing["time/update_actor"] = time.perf_counter() - t
        timing["time/step"] = time.perf_counter() - t0

        n_resp = int(mask.sum())
        n_all = int(batch["attention_mask"].sum())
        row = {"step": step + 1, "epoch": epoch, "batch_in_epoch": b}
        row["reward/score_mean"] = float(scores.mean())
        row["reward/rm_mean"] = float(sum(rm_scores) / len(rm_scores))
        for k, v in parts.items():
            row[f"reward/{k}_mean"] = float(sum(v) / len(v))
        lens = mask.sum(-1)
        row.update({"response_length/mean": float(lens.mean()), "response_length/max": float(lens.max()),
                    "response_length/min": float(lens.min()),
                    "response_length/clip_ratio": float(sum(truncated) / len(truncated)),
                    "critic/values_mean": float(masked_mean(batch["values"], mask)),
                    "critic/returns_mean": float(masked_mean(ret, mask)),
                    "critic/advantages_mean": float(masked_mean(adv, mask)),
                    "critic/explained_variance": explained_variance(batch["values"], ret, mask)})
        row.update(metrics)
        row.update(timing)
        row["perf/tokens_per_s"] = n_all / max(timing["time/step"], 1e-9)
        row["perf/response_tokens"] = n_resp
        row["perf/total_tokens"] = n_all
        if self.device.type == "cuda":
            row["gpu/max_memory_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
            row["gpu/max_memory_reserved_gb"] = torch.cuda.max_memory_reserved() / 2**30
            torch.cuda.reset_peak_memory_stats()
        self.state.step += 1
        return reduce_row(row)

    def _chunked(self, fn: Callable[[slice], torch.Tensor], size: int, batch: dict) -> torch.Tensor:
        n = batch["input_ids"].shape[0]
        return torch.cat([fn(sl) for sl in _split(n, size)], dim=0)

    def _make_batch(self, prompt_ids: list[list[int]], responses: list[list[int]]) -> dict:
        pad = self.tokenizer.pad_token_id
        p_ids, p_mask = left_pad(prompt_ids, pad)
        R = max(1, max(len(r) for r in responses))
        r_ids = torch.full((len(responses), R), pad, dtype=torch.long)
        r_mask = torch.zeros((len(responses), R), dtype=torch.long)
        for i, r in enumerate(responses):
            if r:
                r_ids[i, :len(r)] = torch.tensor(r)
                r_mask[i, :len(r)] = 1
        dev = self.device
        return {"input_ids": torch.cat([p_ids, r_ids], 1).to(dev),
                "attention_mask": torch.cat([p_mask, r_mask], 1).to(dev),
                "response_mask": r_mask.to(dev)}

    # -- the loop -------------------------------------------------------------------------------------------------
    def train(self, progress: bool = True) -> RunState:
        from grlo.train import checkpoint as ckpt

        metrics_path = self.output_dir / "metrics.jsonl"
        ckpt_root = self.output_dir / "checkpoints"
        latest = ckpt.latest(ckpt_root)
        if latest is not None and self.g.get("resume", True):
            self.state.step = ckpt.load(latest, self)
            log.info("resumed from %s (step %d)", latest, self.state.step)
        kept = ckpt.truncate_metrics(metrics_path, self.state.step) if rank() == 0 else []
        self.state.metrics = kept
        save_freq = int(self.g.get("save_freq", -1))
        loggers = _Loggers(self.g, self.output_dir) if rank() == 0 else None
        bar = _progress(self.total_steps, self.state.step, progress and rank() == 0)
        while self.state.step < self.total_steps:
            row = self.step()
            if rank() == 0:
                _append_jsonl(metrics_path, row)
                self.state.metrics.append(row)
                loggers.log(row)
                bar.update(1)
                bar.set_postfix(reward=f"{row['reward/score_mean']:.3f}", step=row["step"])
            if save_freq > 0 and self.state.step % save_freq == 0 and self.state.step < self.total_steps:
                ckpt.save(ckpt_root / f"step_{self.state.step:06d}", self, keep_last=int(self.g.get("keep_last", 1)))
        bar.close()
        if loggers:
            loggers.close()
        self.save_final()
        return self.state

    def save_final(self) -> None:
        from grlo.io import atomic_dir, library_versions, write_json
        from grlo.train.checkpoint import full_model_state

        sd = full_model_state(self.actor)  # a collective under FSDP2: every rank takes part
        if rank() != 0:
            return
        with atomic_dir(self.output_dir / "final") as tmp:
            self.actor.save_pretrained(tmp, state_dict=sd)
            self.tokenizer.save_pretrained(tmp)
            write_json(Path(tmp) / "manifest.json", {
                "stage": "grlo", "backbone": self.backbone, "steps": self.state.step,
                "batch_sizes": self.bs, "grlo_config": self.g, "versions": library_versions(),
            })


def load_critic(path: str, dtype: torch.dtype):
    """Value model = the backbone checkpoint with a fresh 1-output token head (verl: AutoModelForTokenClassification);
    dropout off, as verl sets, so values are deterministic."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    cfg = AutoConfig.from_pretrained(path)
    cfg.num_labels = 1
    cfg.classifier_dropout = 0.0
    return AutoModelForTokenClassification.from_pretrained(path, config=cfg, dtype=dtype)


def _pick_device(g: dict) -> torch.device:
    want = g.get("device", "auto")
    if want == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(want)


def _fsdp2_wrap(model, compute_dtype) -> None:  # pragma: no cover - multi-process
    """FSDP2: shard every decoder layer, then the root; bf16 compute with fp32 reduction (verl's mixed precision) on
    GPU, plain fp32 on CPU."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32 if compute_dtype else None)
    import types

    from torch.distributed.fsdp import register_fsdp_forward_method

    base = getattr(model, model.base_model_prefix)
    for layer in base.layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    if hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
        model._grlo_logprobs = types.MethodType(_sequence_logprobs, model)
        register_fsdp_forward_method(model, "_grlo_logprobs")


def _append_jsonl(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _progress(total: int, start: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="grlo ppo", unit="step", disable=not enabled, dynamic_ncols=True)


class _Loggers:
    """TensorBoard / W&B, opt-in through grlo.logger (a list: console is the JSONL file + progress bar)."""

    def __init__(self, g: dict, out: Path):
        names = set(g.get("logger", []) or [])
        self.tb = self.wandb = None
        if "tensorboard" in names:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GrloError("logger tensorboard needs the `tensorboard` package (pip install tensorboard)",
                                field="grlo.logger") from None

            self.tb = SummaryWriter(str(out / "tensorboard"))
        if "wandb" in names:  # pragma: no cover - network
            try:
                import wandb
            except ImportError:
                raise GrloError("logger wandb needs the `wandb` package (pip install wandb)", field="grlo.logger") from None

            self.wandb = wandb.init(project=g.get("project_name", "grlo"), name=g.get("experiment_name"), config=g)

    def log(self, row: dict) -> None:
        step = row["step"]
        for k, v in row.items():
            if isinstance(v, (int, float)) and math.isfinite(v) and k != "step":
                if self.tb:
                    self.tb.add_scalar(k, v, step)
        if self.wandb:  # pragma: no cover
            self.wandb.log(row, step=step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:  # pragma: no cover
            self.wandb.finish()


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

def launch_command(n_gpus: int, argv: list[str]) -> list[str]:
    """How the rule starts training: one process on CPU/1 GPU, torchrun with one process per GPU otherwise."""
    if n_gpus <= 1:
        return ["grlo", "train-grlo", *argv]
    return ["torchrun", "--standalone", f"--nproc_per_node={n_gpus}", "-m", "grlo.cli", "train-grlo", *argv]


def add_arguments(p) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, deep-merged in order")
    p.add_argument("--backbone", required=True, help="registry name of the backbone (recorded in the manifest)")
    p.add_argument("--prompts", required=True, help="prepared prompts JSONL (rows with a `prompt` chat list)")
    p.add_argument("--policy-init", required=True, help="HF model dir of the backbone (actor and critic init)")
    p.add_argument("--reward-model", required=True, help="HF dir of the reward model (with its own tokenizer)")
    p.add_argument("--output-dir", required=True, help="writes final/, metrics.jsonl and checkpoints/ here")
    p.add_argument("--device-record", default=None, help="JSON file describing the device(s) used")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    import subprocess

    from grlo import config as config_mod

    cfg = config_mod.load(args.config)
    source = ", ".join(args.config)
    g = grlo_section(cfg)
    n_gpus = int(g.get("n_gpus_per_node", 1)) * int(g.get("nnodes", 1))
    in_launcher = "WORLD_SIZE" in os.environ
    if n_gpus > 1 and not in_launcher:  # pragma: no cover - multi-GPU: one process per GPU under torchrun
        if not torch.cuda.is_available() or torch.cuda.device_count() < n_gpus:
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise GrloError(f"{n_gpus} GPUs configured, {have} visible: set grlo.n_gpus_per_node (and "
                            f"resources.gpus_train) to what the job has", path=source, field="grlo.n_gpus_per_node")
        cmd = launch_command(n_gpus, _argv_of(args))
        log.info("launching: %s", " ".join(cmd))
        return subprocess.call(cmd)
    if in_launcher and int(os.environ["WORLD_SIZE"]) > 1 and not dist_on():  # pragma: no cover
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group(backend)
    if args.device_record and rank() == 0:
        from grlo.accounting import record_device

        record_device(args.device_record, world_size() if torch.cuda.is_available() else 0)
    trainer = PPOTrainer(cfg, args.backbone, args.prompts, args.policy_init, args.reward_model, args.output_dir,
                         source)
    trainer.train(progress=not args.no_progress)
    return 0


def _argv_of(args) -> list[str]:
    out = ["--config", *args.config, "--backbone", args.backbone, "--prompts", args.prompts, "--policy-init",
           args.policy_init, "--reward-model", args.reward_model, "--output-dir", args.output_dir]
    if args.device_record:
        out += ["--device-record", args.device_record]
    if args.no_progress:
        out.append("--no-progress")
    return out
