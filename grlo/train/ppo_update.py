"""The update phase of the native PPO engine: per-token log-probs and values, then verl's mini/micro-batch schedule
for the critic (clipped value loss) and the actor (dual-clip policy loss), and the optimizer.

Imports torch alone (plus grlo's loss/advantage helpers) so that benchmarks/ppo_update_bench.py can time it."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch

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
