"""Time GRLO's PPO update phase (actor + critic) on synthetic rollouts of the paper's shape, on one device.

Random-weight actor (CausalLM) and critic (TokenClassification, 1 label) of a Qwen3 architecture, bf16 on GPU,
gradient checkpointing on, AdamW; the update code is grlo.train.ppo_update.update_actor / update_critic itself.
Reports tokens/s, model TFLOP/s (6 N T + causal attention, no recompute counted), MFU against the device's MEASURED
bf16 matmul peak, peak memory, and transformers generate() tokens/s. Writes one JSON per run.

    python3 benchmarks/ppo_update_bench.py --sizes 4b 1.7b 0.6b --out benchmarks/results/ppo_update_<gpu>.json
    python3 benchmarks/ppo_update_bench.py --sizes tiny --out /tmp/x.json     # CPU check (a test runs this)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from grlo.train.ppo_update import UpdateSettings, update_actor, update_critic  # noqa: E402

# Qwen3 architectures (config.json of Qwen/Qwen3-{4B,1.7B,0.6B}-Base); tiny is for CPU checks.
ARCHS = {
    "4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "1.7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=384, tie_word_embeddings=True),
}


def qwen3_config(name: str):
    from transformers import Qwen3Config

    return Qwen3Config(**ARCHS[name], rms_norm_eps=1e-6, rope_theta=1_000_000.0, max_position_embeddings=32768,
                       use_cache=False, pad_token_id=0)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def measured_peak_tflops(dev, dtype, n: int, iters: int) -> float:
    """Best achieved dense matmul TFLOP/s: the MFU denominator (measured, not the datasheet)."""
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        sync(dev)
        t = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync(dev)
        best = max(best, 2 * n**3 * iters / (time.perf_counter() - t) / 1e12)
    del a, b
    return best


def build(kind: str, arch: str, dev, dtype):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    cfg = qwen3_config(arch)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build directly in bf16 on the device: no fp32 copy of 4B params on the host
    try:
        with torch.device(dev):
            if kind == "actor":
                m = AutoModelForCausalLM.from_config(cfg)
            else:
                cfg.num_labels = 1
                cfg.classifier_dropout = 0.0
                m = AutoModelForTokenClassification.from_config(cfg)
    finally:
        torch.set_default_dtype(old)
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return m


def synthetic_batch(n: int, prompt_max: int, resp_max: int, vocab: int, dev, gen: torch.Generator) -> dict:
    """Left-padded prompts of 1/4..1 x prompt_max tokens, right-padded responses of 1/8..1 x resp_max tokens; the
    longest sequence is full length so the padded shape is the paper's (prompt_max + resp_max)."""
    p_len = torch.randint(prompt_max // 4, prompt_max + 1, (n,), generator=gen)
    r_len = torch.randint(max(1, resp_max // 8), resp_max + 1, (n,), generator=gen)
    p_len[0], r_len[0] = prompt_max, resp_max
    ids = torch.randint(1, vocab, (n, prompt_max + resp_max), generator=gen)
    am = torch.zeros(n, prompt_max + resp_max, dtype=torch.long)
    rm = torch.zeros(n, resp_max, dtype=torch.long)
    for i in range(n):
        am[i, prompt_max - p_len[i]:prompt_max + r_len[i]] = 1
        rm[i, :r_len[i]] = 1
    ids = ids * am  # pad id 0
    f = rm.float()
    batch = {"input_ids": ids, "attention_mask": am, "response_mask": rm,
             "old_log_probs": -2.0 * f + 0.1 * torch.randn(n, resp_max, generator=gen) * f,
             "advantages": torch.randn(n, resp_max, generator=gen) * f,
             "values": torch.randn(n, resp_max, generator=gen) * f,
             "returns": torch.randn(n, resp_max, generator=gen) * f}
    return {k: v.to(dev) for k, v in batch.items()}, p_len, r_len


def model_flops(arch: str, kind: str, p_len, r_len, prompt_max: int) -> float:
    """Training FLOPs (forward + backward = 3 x forward) on the real (unpadded) tokens, no recompute counted."""
    a = ARCHS[arch]
    h, L, inter = a["hidden_size"], a["num_hidden_layers"], a["intermediate_size"]
    q = a["num_attention_heads"] * a["head_dim"]
    kv = a["num_key_value_heads"] * a["head_dim"]
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * inter  # linear weights of one decoder layer
    total = 0.0
    for p, r in zip(p_len.tolist(), r_len.tolist()):
        n = p + r
        f = 2 * L * per_layer * n + 2 * L * q * n * n  # matmuls + causal attention (QK^T and AV, half masked)
        f += 2 * h * a["vocab_size"] * r if kind == "actor" else 2 * h * n  # lm_head on response tokens / value head
        total += 3 * f
    return total


def time_update(kind: str, arch: str, dev, dtype, micro: int, n_micro: int, prompt_max: int, resp_max: int,
                peak: float, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    model = build(kind, arch, dev, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.999), weight_decay=0.01,
                            **({"fused": True} if dev.type == "cuda" else {}))
    fn = update_actor if kind == "actor" else update_critic
    s = UpdateSettings(mini_batch_size=micro * n_micro, micro_batch_size=micro)
    warm, _, _ = synthetic_batch(micro, prompt_max, resp_max, ARCHS[arch]["vocab_size"], dev, gen)
    s_warm = UpdateSettings(mini_batch_size=micro, micro_batch_size=micro)
    fn(model, opt, warm, s_warm)  # warm-up: kernels, allocator, optimizer state
    del warm
    batch, p_len, r_len = synthetic_batch(micro * n_micro, prompt_max, resp_max, ARCHS[arch]["vocab_size"], dev, gen)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(dev)
    t = time.perf_counter()
    stats = fn(model, opt, batch, s)
    sync(dev)
    dt = time.perf_counter() - t
    real_tokens = int(batch["attention_mask"].sum())
    padded_tokens = int(batch["attention_mask"].numel())
    flops = model_flops(arch, kind, p_len, r_len, prompt_max)
    out = {
        "model": kind, "arch": arch, "params": n_params, "micro_batch": micro, "micro_batches": n_micro,
        "seconds": dt, "real_tokens": real_tokens, "padded_tokens": padded_tokens,
        "response_tokens": int(batch["response_mask"].sum()),
        "tokens_per_s": real_tokens / dt, "padded_tokens_per_s": padded_tokens / dt,
        "model_tflops": flops / dt / 1e12, "mfu": flops / dt / 1e12 / peak if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
        "loss_finite": all(math.isfinite(v) for v in stats.values()),
    }
    del model, opt, batch
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return out


@torch.no_grad()
def time_generate(arch: str, dev, dtype, batch: int, prompt_len: int, new_tokens: int, seed: int) -> dict:
    from transformers import GenerationConfig

    gen = torch.Generator().manual_seed(seed)
    model = build("actor", arch, dev, dtype)
    model.gradient_checkpointing_disable()
    model.config.use_cache = True
    model.eval()
    ids = torch.randint(1, ARCHS[arch]["vocab_size"], (batch, prompt_len), generator=gen).to(dev)
    gc_ = GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None, use_cache=True)
    model.generate(input_ids=ids[:, :8], attention_mask=torch.ones_like(ids[:, :8]),
                   generation_config=GenerationConfig(**{**gc_.to_dict(), "max_new_tokens": 4, "min_new_tokens": 4}))
    sync(dev)
    t = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc_)
    sync(dev)
    dt = time.perf_counter() - t
    n_new = (out.shape[1] - prompt_len) * batch
    del model
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"arch": arch, "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens, "seconds": dt,
            "generated_tokens_per_s": n_new / dt, "backend": "transformers generate (sdpa, KV cache, sampling)"}


def _write(path: str, result: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["4b", "1.7b", "0.6b"], choices=list(ARCHS))
    ap.add_argument("--prompt-len", type=int, default=1024, help="train.sh max_prompt_length")
    ap.add_argument("--response-len", type=int, default=3072, help="train.sh max_response_length")
    ap.add_argument("--actor-micro", type=int, default=16, help="train.sh actor ppo_micro_batch_size_per_gpu")
    ap.add_argument("--critic-micro", type=int, default=32, help="train.sh critic ppo_micro_batch_size_per_gpu")
    ap.add_argument("--micro-batches", type=int, default=2, help="timed micro-batches (one optimizer step)")
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--gen-prompt", type=int, default=256)
    ap.add_argument("--gen-new", type=int, default=128)
    ap.add_argument("--peak-n", type=int, default=8192)
    ap.add_argument("--peak-iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    import transformers

    result = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda": torch.version.cuda, "shape": {"prompt": args.prompt_len, "response_max": args.response_len},
        "notes": ("update phase = update_critic + update_actor from grlo.train.ppo_update; each micro-batch padded "
                  "to its own longest prompt and response (sdpa), tokens/s counts real tokens; model TFLOP/s = 3 x forward FLOPs on real tokens (no recompute); "
                  "optimizer AdamW with states in the parameter dtype; one process, no FSDP"),
        "peak_bf16_matmul_tflops": None, "runs": [], "generation": [], "errors": [],
    }
    t_all = time.perf_counter()
    peak = measured_peak_tflops(dev, dtype, args.peak_n if dev.type == "cuda" else 256, args.peak_iters)
    result["peak_bf16_matmul_tflops" if dev.type == "cuda" else "peak_matmul_tflops"] = peak
    print(f"[bench] device {result['device']}  measured matmul peak {peak:.1f} TFLOP/s", flush=True)
    for arch in args.sizes:
        for kind, micro in (("critic", args.critic_micro), ("actor", args.actor_micro)):
            m = micro
            while m >= 1:
                try:
                    r = time_update(kind, arch, dev, dtype, m, args.micro_batches, args.prompt_len, args.response_len,
                                    peak, args.seed)
                    r["micro_batch_requested"] = micro
                    result["runs"].append(r)
                    print(f"[bench] {arch} {kind} micro {m}: {r['tokens_per_s']:.0f} tok/s  "
                          f"{r['model_tflops']:.1f} TFLOP/s  MFU {r['mfu'] or 0:.3f}  "
                          f"mem {r['peak_memory_gb'] or 0:.1f} GB  {r['seconds']:.1f}s", flush=True)
                    break
                except torch.OutOfMemoryError as e:  # record it, retry with half the micro-batch
                    result["errors"].append(f"{arch} {kind} micro {m}: OOM ({str(e).splitlines()[0][:120]})")
                    print(f"[bench] {arch} {kind} micro {m}: OOM, halving", flush=True)
                    gc.collect()
                    torch.cuda.empty_cache()
                    m //= 2
        try:
            g = time_generate(arch, dev, dtype, args.gen_batch, args.gen_prompt, args.gen_new, args.seed)
            result["generation"].append(g)
            print(f"[bench] {arch} generate: {g['generated_tokens_per_s']:.0f} tok/s", flush=True)
        except torch.OutOfMemoryError as e:
            result["errors"].append(f"{arch} generate: OOM ({str(e).splitlines()[0][:120]})")
            torch.cuda.empty_cache()
        # the update phase of one PPO step = critic + actor on the same tokens
        by = {r["model"]: r for r in result["runs"] if r["arch"] == arch}
        if len(by) == 2:
            a, c = by["actor"], by["critic"]
            per_tok = a["seconds"] / a["real_tokens"] + c["seconds"] / c["real_tokens"]
            result.setdefault("update_phase", {})[arch] = {
                "tokens_per_s": 1.0 / per_tok,
                "model_tflops": (a["model_tflops"] * a["seconds"] / a["real_tokens"]
                                 + c["model_tflops"] * c["seconds"] / c["real_tokens"]) / per_tok,
            }
            if peak:
                result["update_phase"][arch]["mfu"] = result["update_phase"][arch]["model_tflops"] / peak
        result["total_seconds"] = time.perf_counter() - t_all
        _write(args.out, result)  # after every size: a run cut short still leaves its figures
    result["total_seconds"] = time.perf_counter() - t_all
    _write(args.out, result)
    print(f"[bench] wrote {args.out} in {result['total_seconds']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
