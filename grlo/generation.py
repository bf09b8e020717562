"""`grlo generate`: one interface, two back-ends (vLLM on GPU, transformers on CPU) with the same semantics.

Both apply the model's chat template (with `enable_thinking` when set), tokenize the rendered prompt once (the
template writes its own BOS: no second one is added), sample n completions per prompt with temperature / top-p /
top-k / presence penalty / max tokens / stop strings / stop tokens and a seed, and report per completion the text,
its token count and why it finished:
  "stop"   = a stop token (the chat template's end of turn, e.g. `<|im_end|>`) or a stop string,
  "eos"    = the model's end-of-sequence token (tokenizer / generation config eos that is not a stop token),
  "length" = max tokens (or the model's context length),
and any other reason vLLM reports ("abort", "error") as is.

Turn ends: a base model's generation config ends only on its eos (Qwen3-Base: `<|endoftext|>`), while the chat
template closes the assistant turn with another token. Generation stops at the turn end (registry `turn_end` of the
model's source, checked against the tokenizer's chat template at load), so text a model writes past its turn
(invented `user` turns) is never scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grlo import config as C
from grlo import registry
from grlo.accounting import record_device
from grlo.errors import GrloError
from grlo.generation_resume import Resume, fingerprint
from grlo.io import iter_jsonl, library_versions, read_json, write_json, write_jsonl
from grlo.models.ids import resolve_eval_model
from grlo.models.local import check_model_dir
from grlo.registry import templates

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
    stop_tokens: tuple[str, ...] = ()  # token strings (the chat template's turn end), matched as token ids

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
    prefill: str = ""  # opening of the assistant turn (grlo.registry.templates.prefill), appended after the chat prompt


def vllm_sampling_kwargs(s: Sampling, stop_token_ids: list[int] | None = None) -> dict:
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
        "stop_token_ids": list(stop_token_ids or []) or None,
    }


def stop_token_ids(tokenizer, tokens: tuple[str, ...]) -> list[int]:
    """Ids of the stop tokens; each must be one token of this tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise GrloError(f"stop token {missing[0]!r} is not a token of this tokenizer (its chat template ends a turn with "
                        f"{template_turn_end(tokenizer)!r}); fix the model source's turn_end",
                        path=str(registry.REGISTRY_DIR / "models.yaml"), field="turn_end")
    return [vocab[t] for t in tokens]


_MARK = "GRLO-TURN-END-PROBE"


def template_turn_end(tokenizer) -> str | None:
    """The special token the chat template writes right after an assistant message (None: no chat template, or the
    template closes a turn with plain text)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant", "content": _MARK}],
                                             tokenize=False)
    except Exception:  # noqa: BLE001 - templates that refuse this shape have no detectable turn end
        return None
    if _MARK not in text:
        return None
    tail = text.split(_MARK, 1)[1]
    specials = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    for tok_id in tokenizer(tail, add_special_tokens=False)["input_ids"]:
        tok = tokenizer.convert_ids_to_tokens(tok_id)
        if tok in specials:
            return tok
        if tok.strip() and tok not in ("Ċ", "ĊĊ", "Ġ"):  # text before any special token: no token ends the turn
            return None
    return None


def check_turn_end(tokenizer, tokens: tuple[str, ...]) -> None:
    """The configured stop tokens must include the chat template's end of turn (else text past the turn is scored)."""
    end = template_turn_end(tokenizer)
    if end is not None and end not in tokens:
        raise GrloError(f"the chat template ends an assistant turn with {end!r} but the stop tokens are {list(tokens)}: "
                        f"add it to the model source's turn_end", path=str(registry.REGISTRY_DIR / "models.yaml"),
                        field="turn_end")


def prompt_token_ids(tokenizer, requests: list[Request]) -> list[list[int]]:
    """Render each chat and tokenize it without adding special tokens: the template already wrote its BOS
    (Llama-3 `<|begin_of_text|>`), so exactly one BOS whatever the tokenizer."""
    return [tokenizer(render_chat(tokenizer, r.messages, r.chat_kwargs, r.prefill), add_special_tokens=False)["input_ids"]
            for r in requests]


def vllm_finish_reason(output, stop_ids: set[int]) -> str:
    """A vLLM CompletionOutput's finish in our vocabulary. vLLM says "stop" for both an EOS (stop_reason None) and a
    stop token / string (stop_reason = the id or the string); an end token that is both eos and a stop token counts
    as "stop", as in the transformers back-end. Every other reason ("length", "abort", "error") is kept as reported."""
    if output.finish_reason != "stop":
        return str(output.finish_reason)
    last = output.token_ids[-1] if len(output.token_ids) else None
    if output.stop_reason is None and last not in stop_ids:
        return "eos"
    return "stop"


def model_context_length(model_dir: str) -> int | None:
    """max_position_embeddings of the model's config.json (also inside a multimodal `text_config`)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    cfg = read_json(path)
    for node in (cfg, cfg.get("text_config") or {}):
        if isinstance(node.get("max_position_embeddings"), int):
            return int(node["max_position_embeddings"])
    return None


def effective_max_model_len(configured: int | None, model_dir: str) -> int | None:
    """vLLM refuses a max_model_len above the model's own context length (32,768 for the Qwen3 base models):
    take the model's length, capped by the configured one."""
    own = model_context_length(model_dir)
    if own is None:
        return configured
    if configured is not None and configured > own:
        log.info("generation.vllm.max_model_len %d > %s's max_position_embeddings %d: using %d", configured, model_dir, own, own)
    return own if configured is None else min(configured, own)


def request_max_tokens(prompt_lens: list[int], max_tokens: int, max_len: int | None) -> list[int]:
    """Per-request new-token budget: max_tokens, cut to the context left after the prompt."""
    if max_len is None:
        return [max_tokens] * len(prompt_lens)
    out = []
    for i, n in enumerate(prompt_lens):
        if n >= max_len:
            raise GrloError(f"prompt {i} has {n} tokens, not below the model's context length {max_len}",
                            field="generation.vllm.max_model_len")
        out.append(min(max_tokens, max_len - n))
    return out


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut at the earliest stop string (excluded, as vLLM does); report whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def render_chat(tokenizer, messages: list[dict], chat_kwargs: dict, prefill: str = "") -> str:
    """The prompt text: the chat template with its generation prompt; with an assistant prefill, the chat rendered
    as EvalPlus renders it (grlo.registry.templates.render_with_prefill: the template's own assistant opening first)."""
    if prefill:
        return templates.render_with_prefill(tokenizer, messages, chat_kwargs, prefill)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **chat_kwargs)


class PresencePenalty:
    """vLLM's presence penalty for transformers: subtract `penalty` from the logits of every token already
    generated (prompt tokens excluded)."""

    def __init__(self, penalty: float, prompt_len: int):
        self.penalty, self.prompt_len = penalty, prompt_len

    def __call__(self, input_ids, scores):
        import torch  # heavy: torch

        gen = input_ids[:, self.prompt_len :]
        if gen.shape[1] == 0:
            return scores
        seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, gen, True)
        return scores - self.penalty * seen.to(scores.dtype)


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_dir: str, dtype: str = "float32", batch_size: int = 16, threads: int | None = None, model=None, tokenizer=None):
        import torch  # heavy: torch
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"  # decoder-only batched generation
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model or AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self.model.eval()
        self.batch_size = batch_size
        self.logits_processors: list = []  # extra transformers LogitsProcessors (tests script a generation with one)
        self.max_model_len = None

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def generate(self, requests: list[Request], s: Sampling, progress: bool = True) -> list[list[Completion]]:
        import torch  # heavy: torch
        from tqdm import tqdm  # optional: tqdm
        from transformers import LogitsProcessorList  # heavy: transformers

        check_turn_end(self.tokenizer, s.stop_tokens)
        prompts = prompt_token_ids(self.tokenizer, requests)
        eos, stops = self._eos_ids(), stop_token_ids(self.tokenizer, s.stop_tokens)
        ends = eos + [t for t in stops if t not in eos]
        out: list[list[Completion]] = []
        starts = range(0, len(prompts), self.batch_size)
        for b, start in enumerate(tqdm(starts, desc="generate", unit="batch", disable=not progress)):
            chunk = prompts[start : start + self.batch_size]
            enc = self.tokenizer.pad({"input_ids": chunk}, return_tensors="pt", padding=True)
            plen = enc["input_ids"].shape[1]
            kwargs = dict(max_new_tokens=s.max_tokens, num_return_sequences=s.n, eos_token_id=ends,
                          pad_token_id=self.tokenizer.pad_token_id, do_sample=not s.greedy)
            if not s.greedy:
                kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k if s.top_k > 0 else None)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            procs = ([PresencePenalty(s.presence_penalty, plen)] if s.presence_penalty else []) + self.logits_processors
            if procs:
                kwargs["logits_processor"] = LogitsProcessorList(procs)
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
                        if tok in ends:
                            n_tok, reason = t + 1, "stop" if tok in stops else "eos"
                            break
                    # strip trailing padding after the end token
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
            from vllm import LLM  # heavy: vllm
        except ImportError as e:
            raise GrloError(f"vLLM is not installed ({e}); install the gpu extra or set generation.backend: transformers",
                            field="generation.backend") from None
        self.max_model_len = effective_max_model_len(max_model_len, model_dir)
        self.llm = LLM(model=model_dir, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=self.max_model_len, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: list[Request], s: Sampling, progress: bool = True) -> list[list[Completion]]:
        from vllm import SamplingParams  # heavy: vllm

        check_turn_end(self.tokenizer, s.stop_tokens)
        stops = stop_token_ids(self.tokenizer, s.stop_tokens)
        ids = prompt_token_ids(self.tokenizer, requests)
        budgets = request_max_tokens([len(x) for x in ids], s.max_tokens, self.max_model_len)
        params = [SamplingParams(**{**vllm_sampling_kwargs(s, stops), "max_tokens": m}) for m in budgets]
        outs = self.llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=progress)
        return [[Completion(o.text, len(o.token_ids), vllm_finish_reason(o, set(stops))) for o in r.outputs]
                for r in outs]


def make_backend(gen_cfg: dict, model_dir: str, seed: int, threads: int | None = None):
    if gen_cfg.get("backend", "transformers") == "vllm":
        v = gen_cfg.get("vllm", {})
        return VLLMBackend(model_dir, gen_cfg.get("dtype", "bfloat16"), v.get("tensor_parallel_size", 1),
                           v.get("gpu_memory_utilization", 0.9), v.get("max_model_len"), seed)
    return TransformersBackend(model_dir, gen_cfg.get("dtype", "float32"), gen_cfg.get("batch_size", 16), threads)


def turn_end_tokens(cfg: dict, model_id: str) -> tuple[str, ...]:
    """The stop tokens that end an assistant turn for this evaluated model: registry `turn_end` of its source in the
    config's mode (a string or a list; absent = none: the model's eos only)."""
    m = resolve_eval_model(cfg, model_id)
    src = registry.source(registry.model(m["source"]), cfg["mode"], m["source"])
    end = src.get("turn_end") or ()
    return (end,) if isinstance(end, str) else tuple(end)


def family_sampling(cfg: dict, model_id: str, bench: str) -> dict:
    """The model family's sampling for one benchmark: a released model's mode (Qwen's settings), else the backbone
    entry's `sampling` (every variant trained from it: base, grlo, rlvr, grlo-rlvr), each with `sampling_by_benchmark`."""
    m = resolve_eval_model(cfg, model_id)
    if m["sampling"]:
        mode = {k: v for k, v in m["sampling"].items() if k != "by_benchmark"}
        by = m["sampling"].get("by_benchmark") or {}
    else:
        entry = registry.model(m["source"])
        mode, by = dict(entry.get("sampling") or {}), entry.get("sampling_by_benchmark") or {}
    mode.update(by.get(bench) or {})
    return mode


def eval_settings(cfg: dict, model_id: str, bench: str) -> tuple[Sampling, dict, int | None]:
    """Sampling (stop tokens included), chat kwargs and row limit for one (model, benchmark): benchmark defaults <
    the model family's sampling (Qwen's per-mode settings; the backbone's for trained variants) < config
    evaluation.overrides. The stop tokens are the model's turn end (registry `turn_end`)."""
    entry = registry.benchmark(bench)
    m = resolve_eval_model(cfg, model_id)
    mode = family_sampling(cfg, model_id, bench)
    merged = {**entry.get("sampling", {}), **mode, **(C.get(cfg, f"evaluation.overrides.{bench}") or {})}
    limit = merged.pop("limit", None)
    k = merged.pop("k", 1)
    s = Sampling(temperature=float(merged.get("temperature", 0.0)), top_p=float(merged.get("top_p", 1.0)),
                 top_k=int(merged.get("top_k", -1)), max_tokens=int(merged.get("max_tokens", 256)), n=int(k),
                 seed=int(cfg.get("seed", 0)), presence_penalty=float(merged.get("presence_penalty", 0.0)),
                 stop=tuple(merged.get("stop", ())), stop_tokens=turn_end_tokens(cfg, model_id))
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
    return templates.prefill(registry.benchmark(bench).get("prompt_template"))


def _request(bench: str, row: dict, chat: dict) -> Request:
    """One row's request: its chat messages for the model's mode (grlo.registry.templates.chat_messages) and prefill."""
    return Request(templates.chat_messages(registry.benchmark(bench).get("prompt_template"), row, chat), chat, _prefill(bench))


def _prompt_record(tokenizer, bench: str, chat: dict, rows: list[dict]) -> dict:
    """What the meta records about the prompts: their style and the assistant opening the completions continue
    (put back in front of each completion by `grlo score`)."""
    name = registry.benchmark(bench).get("prompt_template")
    opening = ""
    if rows and _prefill(bench):
        req = _request(bench, rows[0], chat)
        opening = templates.assistant_opening(tokenizer, req.messages, chat, req.prefill)
    return {"prompt_style": templates.prompt_style(name, chat), "assistant_prefill": opening}


def _write_bench(args, cfg, backend, manifest, t_load, t_gen, group, bench, s, chat, rows, outs) -> None:
    n_tokens = sum(c.num_tokens for cs in outs for c in cs)
    out = Path(args.output_dir) / f"{bench}.jsonl"
    write_jsonl(out, ({"id": r["id"], "prompt": r["prompt"], "completions": [c.text for c in cs],
                       "completion_tokens": [c.num_tokens for c in cs], "finish_reasons": [c.finish_reason for c in cs]}
                      for r, cs in zip(rows, outs)))
    write_json(out.with_suffix(".meta.json"), {
        "model": args.model, "model_dir": args.model_dir, "benchmark": bench, "n_problems": len(rows),
        "backend": backend.name, "sampling": dataclasses.asdict(s),
        "stop_token_ids": stop_token_ids(backend.tokenizer, s.stop_tokens), "max_model_len": backend.max_model_len,
        "finish_reason_counts": dict(Counter(c.finish_reason for cs in outs for c in cs)), "chat_template_kwargs": chat,
        **_prompt_record(backend.tokenizer, bench, chat, rows),
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
    check_model_dir(args.model_dir, "model", tokenizer=True)  # one line, not transformers' "Repo id must be ..."
    if args.device_record:
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
    resume = Resume(args.output_dir)  # a killed job's finished benchmarks come back instead of being regenerated
    fps = {bench: fingerprint(model=args.model, model_dir=str(Path(args.model_dir).resolve()), manifest=manifest,
                              bench=bench, sampling=dataclasses.asdict(s), chat=chat, prefill=_prefill(bench),
                              ids=[r["id"] for r in rows], generation=cfg["generation"], seed=cfg.get("seed"))
           for bench, s, chat, rows in plans}
    for (s, _), members in groups.items():
        if all(resume.restore(m[0], fps[m[0]]) for m in members):
            print(f"restored {', '.join(m[0] for m in members)} for {args.model} from an earlier attempt")
            continue
        chat = members[0][2]
        reqs = [_request(bench, r, chat) for bench, _, _, rows in members for r in rows]
        t1 = time.time()
        outs = backend.generate(reqs, s)
        t_gen = time.time() - t1
        start = 0
        for bench, _, _, rows in members:
            bench_outs, start = outs[start : start + len(rows)], start + len(rows)
            _write_bench(args, cfg, backend, manifest, t_load, t_gen, [m[0] for m in members], bench, s, chat, rows, bench_outs)
            resume.save(bench, fps[bench])
    resume.finish()
    return 0
