"""The update phase of the native PPO engine: per-token log-probs and values, then verl's mini/micro-batch schedule
for the critic (clipped value loss) and the actor (dual-clip policy loss), and the optimizer.

Imports torch alone (plus grlo's loss/advantage helpers) so that benchmarks/ppo_update_bench.py can time it."""

from __future__ import annotations

import contextlib
import logging
import math
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grlo.errors import GrloError
from grlo.train.advantages import masked_mean
from grlo.train.distributed import all_sum, world_size
from grlo.train.losses import policy_loss, value_loss

log = logging.getLogger("grlo.train.ppo")


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

LOSS_NORMALIZATIONS = ("micro-batch-mean", "mini-batch-tokens")


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
    # micro-batch-mean: verl 0.6.1 legacy workers (dp_actor/dp_critic): each micro-batch loss aggregated over that
    #   micro-batch alone, times 1/grad_accum; FSDP then averages over processes.
    # mini-batch-tokens: token-mean over the whole (all-process) mini-batch: sum(loss * mask) / its token count.
    loss_normalization: str = "micro-batch-mean"
    temperature: float = 1.0
    autocast_dtype: torch.dtype | None = None

    def __post_init__(self):
        if self.loss_normalization not in LOSS_NORMALIZATIONS:
            raise GrloError(f"unknown loss normalisation {self.loss_normalization!r} (one of "
                            f"{', '.join(LOSS_NORMALIZATIONS)})", field="grlo.loss_agg_normalization")
        if self.loss_agg_mode == "seq-mean-token-sum-norm":
            # its divisor is the padded response width (verl: max_response_length), which per-micro-batch padding
            # changes; no GRLO setting uses it
            raise GrloError("loss_agg_mode seq-mean-token-sum-norm is not supported by the native engine (use "
                            "token-mean, seq-mean-token-sum or seq-mean-token-mean)", field="grlo.actor.loss_agg_mode")
        if self.loss_normalization == "mini-batch-tokens" and self.loss_agg_mode != "token-mean":
            raise GrloError("loss_agg_normalization mini-batch-tokens needs actor.loss_agg_mode token-mean",
                            field="grlo.loss_agg_normalization")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def micro_batch(batch: dict, sl: slice) -> dict:
    """Rows `sl` of a [left-padded prompt | right-padded response] batch, cut to the micro-batch's own longest prompt
    and longest response (padding per micro-batch, not per rank batch). Response-shaped tensors (B, R) are cut to
    the same response width; every other key is only row-sliced."""
    am, rm = batch["attention_mask"][sl], batch["response_mask"][sl]
    R = rm.shape[-1]
    P = am.shape[-1] - R
    r1 = max(1, int(rm.sum(-1).max().item())) if rm.numel() else 1
    p_len = int(am[:, :P].sum(-1).max().item()) if P and am.numel() else 0
    out = {}
    for k, v in batch.items():
        if not isinstance(v, torch.Tensor):
            out[k] = v
        elif k in ("input_ids", "attention_mask"):
            out[k] = v[sl][:, P - p_len:P + r1]
        elif v.dim() == 2 and v.shape[-1] == R:
            out[k] = v[sl][:, :r1]
        else:
            out[k] = v[sl]
    return out


def pad_response(x: torch.Tensor, width: int) -> torch.Tensor:
    """Right-pad a (B, r) response-shaped tensor with zeros back to the batch's response width."""
    return F.pad(x, (0, width - x.shape[-1])) if x.shape[-1] < width else x


def _clip_grads(model, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if hasattr(norm, "full_tensor"):  # FSDP2 DTensor
        norm = norm.full_tensor()
    return float(norm)


def _minibatch_updates(model, optimizer, batch: dict, s: UpdateSettings, micro_step, name: str) -> list[float]:
    """verl's update schedule, shared by critic and actor: per epoch and mini-batch, accumulate
    `micro_step(mb, n_tok, scale)` over micro-batches, clip, one optimizer step; gradients freed after the last one.

    `mb` is the micro-batch cut to its own padding (`micro_batch`). Normalisation (`s.loss_normalization`):
    micro-batch-mean passes n_tok=None (the loss aggregates over the micro-batch) and scale=1/grad_accum, as verl's
    legacy workers (grad_accum = micro-batches per mini-batch = ppo_mini_batch_size // micro batch when it divides);
    mini-batch-tokens passes the all-process token count of the mini-batch and scale = world size (undoing FSDP's
    gradient averaging over processes)."""
    n = batch["input_ids"].shape[0]
    norms = []
    for _ in range(s.epochs):
        for mini in _split(n, s.mini_batch_size):
            optimizer.zero_grad(set_to_none=True)
            micros = _split(mini.stop - mini.start, s.micro_batch_size)
            if s.loss_normalization == "micro-batch-mean":
                n_tok, scale = None, 1.0 / len(micros)
            else:
                n_tok, scale = float(all_sum(batch["response_mask"][mini].sum().double())), float(world_size())
            for mb in micros:
                micro_step(micro_batch(batch, slice(mini.start + mb.start, mini.start + mb.stop)), n_tok, scale)
            gn = _clip_grads(model, s.grad_clip)
            if math.isfinite(gn):
                optimizer.step()
            else:
                log.warning("%s grad norm is %s: step skipped", name, gn)
            norms.append(gn)
    optimizer.zero_grad(set_to_none=True)  # free the gradients before the next rollout needs the memory
    return norms


def update_critic(critic, optimizer, batch: dict, s: UpdateSettings) -> dict:
    """Clipped value regression to the GAE returns; one optimizer step per mini-batch (verl dp_critic)."""
    critic.train()
    dev = batch["input_ids"].device
    stats: dict[str, list[float]] = {"critic/vf_loss": [], "critic/vf_clipfrac": [], "critic/vpred_mean": []}

    def micro_step(mb: dict, n_tok: float | None, scale: float) -> None:
        mask = mb["response_mask"]
        with _autocast(dev, s.autocast_dtype):
            v = sequence_values(critic, mb["input_ids"], mb["attention_mask"], mask)
        out = value_loss(v, mb["values"], mb["returns"], mask, s.cliprange_value, s.loss_agg_mode, n_tok)
        (out.loss * scale).backward()
        # the mini-batch loss is the sum of the scaled micro-batch losses; reduce_row's mean over processes then
        # gives the global value in both normalisations
        stats["critic/vf_loss"].append(out.loss.item() * scale)
        stats["critic/vf_clipfrac"].append(out.clipfrac.item())
        stats["critic/vpred_mean"].append(masked_mean(v.detach(), mask).item())

    stats["critic/grad_norm"] = _minibatch_updates(critic, optimizer, batch, s, micro_step, "critic")
    return _reduce_stats(stats, sums=("critic/vf_loss",))


def update_actor(actor, optimizer, batch: dict, s: UpdateSettings) -> dict:
    """PPO clipped surrogate (dual-clip, no KL); one optimizer step per mini-batch (verl dp_actor)."""
    if s.entropy_coeff:
        # entropy from the chunked helper is detached; an entropy bonus would need it with grad
        raise GrloError("entropy_coeff != 0 is not supported (train.sh leaves verl's default 0)",
                        field="grlo.actor.entropy_coeff")
    actor.train()
    dev = batch["input_ids"].device
    stats: dict[str, list[float]] = {"actor/pg_loss": [], "actor/pg_clipfrac": [], "actor/pg_clipfrac_lower": [],
                                     "actor/ppo_kl": [], "actor/entropy": []}

    def micro_step(mb: dict, n_tok: float | None, scale: float) -> None:
        mask = mb["response_mask"]
        with _autocast(dev, s.autocast_dtype):
            logp, ent = sequence_logprobs(actor, mb["input_ids"], mb["attention_mask"], mask, s.temperature)
        out = policy_loss(logp, mb["old_log_probs"], mb["advantages"], mask, s.clip_ratio_low,
                          s.clip_ratio_high, s.clip_ratio_c, s.loss_agg_mode, n_tok)
        (out.loss * scale).backward()
        stats["actor/pg_loss"].append(out.loss.item() * scale)
        stats["actor/pg_clipfrac"].append(out.clipfrac.item())
        stats["actor/pg_clipfrac_lower"].append(out.clipfrac_lower.item())
        stats["actor/ppo_kl"].append(out.approx_kl.item())
        stats["actor/entropy"].append(masked_mean(ent, mask).item())

    stats["actor/grad_norm"] = _minibatch_updates(actor, optimizer, batch, s, micro_step, "actor")
    return _reduce_stats(stats, sums=("actor/pg_loss",))


def _reduce_stats(stats: dict[str, list[float]], sums: tuple[str, ...] = ()) -> dict:
    """Mean over micro-batches, except the (scaled) losses: those add up per mini-batch."""
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


def fsdp2_wrap(model, compute_dtype) -> None:  # pragma: no cover - multi-process
    """FSDP2: shard every decoder layer, then the root; bf16 compute with fp32 reduction (verl's mixed precision) on
    GPU, plain fp32 on CPU."""
    from torch.distributed.fsdp import (MixedPrecisionPolicy, fully_shard,  # heavy: torch (multi-process runs only)
                                        register_fsdp_forward_method)

    mp = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32 if compute_dtype else None)
    base = getattr(model, model.base_model_prefix)
    for layer in base.layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    if hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
        model._grlo_logprobs = types.MethodType(_sequence_logprobs, model)
        register_fsdp_forward_method(model, "_grlo_logprobs")
