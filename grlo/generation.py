"""`grlo generate`: one interface, two back-ends (vLLM on GPU, transformers on CPU) with the same semantics.

Both apply the model's chat template (with `enable_thinking` when set), sample n completions per prompt with
temperature / top-p / top-k / presence penalty / max tokens / stop strings and a seed, and report per completion the
text, its token count and why it finished ("stop" = eos or a stop string, "length" = max tokens).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from grlo import config as C
from grlo import registry
from grlo.errors import GrloError
from grlo.io import iter_jsonl, library_versions, read_json, write_json, write_jsonl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1 = off (vLLM's convention)
    max_tokens: int = 256
    n: int = 1
    seed: int = 0
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1 or self.n < 1:
            raise GrloError(f"invalid sampling settings {dataclasses.asdict(self)}", field="sampling")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Completion:
    text: str
    num_tokens: int
    finish_reason: str


@dataclass
class Request:
    messages: list[dict]
    chat_kwargs: dict = field(default_factory=dict)
    prefill: str = ""  # opening of the assistant turn (grlo.eval.templates.prefill), appended after the chat prompt


def vllm_sampling_kwargs(s: Sampling) -> dict:
    """Our settings -> vllm.SamplingParams(**kwargs). Greedy is temperature 0 in both back-ends."""
    return {
        "n": s.n,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k if s.top_k and s.top_k > 0 else -1,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "presence_penalty": s.presence_penalty,
        "stop": list(s.stop) or None,
    }


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut at the earliest stop string (excluded, as vLLM does); report whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def render_chat(tokenizer, messages: list[dict], chat_kwargs: dict, prefill: str = "") -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **chat_kwargs) + prefill


class PresencePenalty:
    """vLLM's presence penalty for transformers: subtract `penalty` from the logits of every token already
    generated (prompt tokens excluded)."""

    def __init__(self, penalty: float, prompt_len: int):
        self.penalty, self.prompt_len = penalty, prompt_len

    def __call__(self, input_ids, scores):
        import torch

        gen = input_ids[:, self.prompt_len :]
        if gen.shape[1] == 0:
            return scores
        seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, gen, True)
        return scores - self.penalty * seen.to(scores.dtype)


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_dir: str, dtype: str = "float32", batch_size: int = 16, threads: int | None = None, model=None, tokenizer=None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"  # decoder-only batched generation
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model or AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self.model.eval()
        self.batch_size = batch_size

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def generate(self, requests: list[Request], s: Sampling, progress: bool = True) -> list[list[Completion]]:
        import torch
        from tqdm import tqdm
        from transformers import LogitsProcessorList

        texts = [render_chat(self.tokenizer, r.messages, r.chat_kwargs, r.prefill) for r in requests]
        eos = self._eos_ids()
        out: list[list[Completion]] = []
        starts = range(0, len(texts), self.batch_size)
        for b, start in enumerate(tqdm(starts, desc="generate", unit="batch", disable=not progress)):
            chunk = texts[start : start + self.batch_size]
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            plen = enc["input_ids"].shape[1]
            kwargs = dict(max_new_tokens=s.max_tokens, num_return_sequences=s.n, eos_token_id=eos,
                          pad_token_id=self.tokenizer.pad_token_id, do_sample=not s.greedy)
            if not s.greedy:
                kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k if s.top_k > 0 else None)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            if s.presence_penalty:
                kwargs["logits_processor"] = LogitsProcessorList([PresencePenalty(s.presence_penalty, plen)])
            torch.manual_seed(s.seed + b)  # per batch: results do not depend on which batches ran before
            with torch.no_grad():
                seqs = self.model.generate(**enc, **kwargs)
            gen = seqs[:, plen:]
            for i in range(len(chunk)):
                comps = []
                for j in range(s.n):
                    ids = gen[i * s.n + j].tolist()
                    n_tok, reason = len(ids), "length"
                    for t, tok in enumerate(ids):
                        if tok in eos:
                            n_tok, reason = t + 1, "stop"
                            break
                    # strip trailing padding after eos
                    text = self.tokenizer.decode(ids[:n_tok], skip_special_tokens=True)
                    text, hit = truncate_at_stop(text, s.stop)
                    comps.append(Completion(text, n_tok, "stop" if hit else reason))
                out.append(comps)
        return out


class VLLMBackend:
    name = "vllm"

    def __init__(self, model_dir: str, dtype: str = "bfloat16", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, seed: int = 0):
        try:
            from vllm import LLM
        except ImportError as e:
            raise GrloError(f"vLLM is not installed ({e}); install the gpu extra or set generation.backend: transformers",
                            field="generation.backend") from None
        self.llm = LLM(model=model_dir, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: list[Request], s: Sampling, progress: bool = True) -> list[list[Completion]]:
        from vllm import SamplingParams

        prompts = [render_chat(self.tokenizer, r.messages, r.chat_kwargs, r.prefill) for r in requests]
        outs = self.llm.generate(prompts, SamplingParams(**vllm_sampling_kwargs(s)), use_tqdm=progress)
        return [[Completion(o.text, len(o.token_ids), "length" if o.finish_reason == "length" else "stop") for o in r.outputs]
                for r in outs]


def make_backend(gen_cfg: dict, model_dir: str, seed: int, threads: int | None = None):
    if gen_cfg.get("backend", "transformers") == "vllm":
        v = gen_cfg.get("vllm", {})
        return VLLMBackend(model_dir, gen_cfg.get("dtype", "bfloat16"), v.get("tensor_parallel_size", 1),
                           v.get("gpu_memory_utilization", 0.9), v.get("max_model_len"), seed)
    return TransformersBackend(model_dir, gen_cfg.get("dtype", "float32"), gen_cfg.get("batch_size", 16), threads)


def eval_settings(cfg: dict, model_id: str, bench: str) -> tuple[Sampling, dict, int | None]:
    """Sampling, chat kwargs and row limit for one (model, benchmark): benchmark defaults < the model mode's
    sampling (e.g. Qwen's thinking settings) < config evaluation.overrides."""
    from grlo.workflow import resolve_eval_model

    entry = registry.benchmark(bench)
    m = resolve_eval_model(cfg, model_id)
    mode = {k: v for k, v in m["sampling"].items() if k != "by_benchmark"}
    mode.update((m["sampling"].get("by_benchmark") or {}).get(bench, {}))
    merged = {**entry.get("sampling", {}), **mode, **(C.get(cfg, f"evaluation.overrides.{bench}") or {})}
    limit = merged.pop("limit", None)
    k = merged.pop("k", 1)
    s = Sampling(temperature=float(merged.get("temperature", 0.0)), top_p=float(merged.get("top_p", 1.0)),
                 top_k=int(merged.get("top_k", -1)), max_tokens=int(merged.get("max_tokens", 256)), n=int(k),
                 seed=int(cfg.get("seed", 0)), presence_penalty=float(merged.get("presence_penalty", 0.0)),
                 stop=tuple(merged.get("stop", ())))
    return s, m["chat"], limit


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--model", required=True, help="evaluated model id, e.g. qwen3-4b-base--grlo")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--benchmarks", nargs="+", required=True, help="one or more registry benchmarks (the model loads once)")
    p.add_argument("--data-dir", required=True, help="directory of normalised benchmark JSONL files (NAME.jsonl)")
    p.add_argument("--output-dir", required=True, help="writes NAME.jsonl and NAME.meta.json per benchmark")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device-record", default=None)


def _load_rows(path: Path, limit: int | None) -> list[dict]:
    rows = []
    for lineno, row in iter_jsonl(path):
        if "id" not in row or not isinstance(row.get("prompt"), str):
            raise GrloError("row needs 'id' and a string 'prompt'", path=str(path), field=f"line {lineno}")
        rows.append(row)
    return rows[:limit] if limit else rows


def _prefill(bench: str) -> str:
    from grlo.eval.templates import prefill

    return prefill(registry.benchmark(bench).get("prompt_template"))


def _write_bench(args, cfg, backend, manifest, t_load, t_gen, group, bench, s, chat, rows, outs) -> None:
    n_tokens = sum(c.num_tokens for cs in outs for c in cs)
    out = Path(args.output_dir) / f"{bench}.jsonl"
    write_jsonl(out, ({"id": r["id"], "prompt": r["prompt"], "completions": [c.text for c in cs],
                       "completion_tokens": [c.num_tokens for c in cs], "finish_reasons": [c.finish_reason for c in cs]}
                      for r, cs in zip(rows, outs)))
    write_json(out.with_suffix(".meta.json"), {
        "model": args.model, "model_dir": args.model_dir, "benchmark": bench, "n_problems": len(rows),
        "backend": backend, "sampling": dataclasses.asdict(s), "chat_template_kwargs": chat,
        "assistant_prefill": _prefill(bench),
        "generation_config": cfg["generation"], "model_manifest": manifest, "versions": library_versions(),
        "load_s": round(t_load, 2), "generate_s": round(t_gen, 2), "batched_with": group,
        "completion_tokens": n_tokens})
    print(f"generated {len(rows)}x{s.n} completions for {args.model} on {bench} ({n_tokens} tokens; group {'+'.join(group)}: {t_gen:.1f}s)")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    # Resolve and validate every benchmark before loading the model: bad input fails fast.
    plans = []
    for bench in args.benchmarks:
        s, chat, limit = eval_settings(cfg, args.model, bench)
        plans.append((bench, s, chat, _load_rows(Path(args.data_dir) / f"{bench}.jsonl", limit)))
    if args.device_record:
        from grlo.accounting import record_device

        record_device(args.device_record, int(C.get(cfg, "resources.gpus_eval", 0)))
    t0 = time.time()
    backend = make_backend(cfg["generation"], args.model_dir, int(cfg.get("seed", 0)), args.threads)
    t_load = time.time() - t0
    manifest = Path(args.model_dir) / "manifest.json"
    manifest = read_json(manifest) if manifest.exists() else None
    # Benchmarks with identical sampling and chat settings share batches (one pass of the back-end per group):
    # the same outputs per request, far fewer decode loops on CPU.
    groups: dict[tuple, list] = {}
    for plan in plans:
        groups.setdefault((plan[1], tuple(sorted(plan[2].items()))), []).append(plan)
    for (s, _), members in groups.items():
        chat = members[0][2]
        reqs = [Request([{"role": "user", "content": r["prompt"]}], chat, _prefill(bench))
                for bench, _, _, rows in members for r in rows]
        t1 = time.time()
        outs = backend.generate(reqs, s)
        t_gen = time.time() - t1
        start = 0
        for bench, _, _, rows in members:
            bench_outs, start = outs[start : start + len(rows)], start + len(rows)
            _write_bench(args, cfg, backend.name, manifest, t_load, t_gen, [m[0] for m in members], bench, s, chat, rows, bench_outs)
    return 0
