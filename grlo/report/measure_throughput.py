"""Measure the `train` and `forward` efficiencies of grlo/report/throughput.yaml on the GPU at hand.

    python -m grlo.report.measure_throughput --out reading.json [--preset qwen3-4b] [--seq 2048] [--batch 4]

Builds a randomly initialised model with the architecture of the preset (no download), then times
  forward   no-grad forward passes            efficiency = 2 N tokens / time / peak
  train     forward + backward with gradient  efficiency = 8 N tokens / time / peak  (6 N + 2 N recompute, the
            checkpointing (no optimizer step)  same FLOP count the forecast uses)
  matmul    one large bf16 matrix product     achieved TFLOP/s (an upper bound for the card)
N = all parameters (embeddings included, as the registry's params_b). The device is recorded with
grlo.accounting.record_device. On CPU the tiny preset checks the arithmetic only.
"""

from __future__ import annotations

import argparse
import json
import time

from grlo.accounting import record_device
from grlo.io import write_text

PRESETS = {
    # Qwen3-4B-Base architecture (its config.json on the hub): 36 layers, hidden 2560, 32 q / 8 kv heads of 128
    "qwen3-4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True,
                     max_position_embeddings=40960),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=512, tie_word_embeddings=True,
                 max_position_embeddings=512),
}


def _sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, torch, device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(torch, device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(torch, device)
    return (time.perf_counter() - t0) / iters


def measure(preset: str, seq: int, batch: int, iters: int, peak_tflops: float | None, device_name: str | None = None
            ) -> dict:
    import torch  # heavy: torch
    from transformers import AutoModelForCausalLM, Qwen3Config  # heavy: transformers

    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    cfg = Qwen3Config(**PRESETS[preset])
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    n_params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    tokens = batch * seq
    out: dict = {"preset": preset, "params": n_params, "seq": seq, "batch": batch, "dtype": str(dtype),
                 "device": record_device(None, 1 if device.type == "cuda" else 0), "torch": torch.__version__}
    import transformers  # heavy: transformers

    out["transformers"] = transformers.__version__
    model.eval()

    def fwd():
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)

    t_fwd = _time(fwd, torch, device, 1, iters)
    model.train()
    model.gradient_checkpointing_enable()

    def train():
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    t_train = _time(train, torch, device, 1, iters)
    out["forward"] = {"s_per_step": t_fwd, "tokens_per_s": tokens / t_fwd, "tflops": 2 * n_params * tokens / t_fwd / 1e12}
    out["train"] = {"s_per_step": t_train, "tokens_per_s": tokens / t_train,
                    "tflops": 8 * n_params * tokens / t_train / 1e12}
    if device.type == "cuda":
        n = 8192
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        t_mm = _time(lambda: a @ b, torch, device, 3, 10)
        out["matmul_8192_tflops"] = 2 * n ** 3 / t_mm / 1e12
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / (1 << 30)
    if peak_tflops:
        out["peak_bf16_tflops"] = peak_tflops
        for k in ("forward", "train"):
            out[k]["efficiency"] = out[k]["tflops"] / peak_tflops
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="qwen3-4b", choices=sorted(PRESETS))
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, help="datasheet peak for the efficiency (e.g. 989.4 for H100/H200)")
    p.add_argument("--device")
    p.add_argument("--out")
    a = p.parse_args(argv)
    res = measure(a.preset, a.seq, a.batch, a.iters, a.peak_tflops, a.device)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        write_text(a.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
