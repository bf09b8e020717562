"""`grlo reference-answers`: the known-answer row. Each benchmark's reference solution, written in the shape its prompt
asks for, is saved as the generations of the pseudo-model `reference--answers` and goes through the same
`grlo score` path as every model (assistant prefill, extraction, checker, sandbox). It must score 100: a lower
value means an extractor, a checker or the sandbox cannot award credit, which no real model's score would reveal
in smoke mode, where almost every cell is 0.

Shapes (one completion per problem): math `The final answer is \\boxed{GOLD}.`; multiple choice `Answer: LETTER`
(the prompt's own line); EvalPlus the task prompt + canonical solution inside the code fence the prefill opened.
Benchmarks whose rows carry no reference (IFEval, AlpacaEval, LiveCodeBench) get no row: their cells stay "not run".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grlo import config as C
from grlo import registry
from grlo.errors import GrloError
from grlo.registry import spec as spec_mod, templates
from grlo.io import read_jsonl, write_json, write_jsonl

REFERENCE_MODEL = "reference--answers"
REFERENCE_LABEL = "Known answers (reference solutions scored as generations; must be 100)"
KINDS_WITH_REFERENCE = ("math", "choice", "evalplus")


def benchmarks_with_reference(cfg: dict) -> list[str]:
    """The configured benchmarks whose scorer kind has a reference answer in every row."""
    benches = C.get(cfg, "evaluation.benchmarks") or []
    return [b for b in benches if registry.benchmark(b).get("scorer") in KINDS_WITH_REFERENCE]


def _code(row: dict) -> str | None:
    ep = row.get("evalplus") or {}
    canonical = row.get("canonical_solution") or ep.get("canonical_solution")
    if not canonical:
        return None
    prompt = ep.get("prompt") or row.get("problem") or ""
    return prompt + canonical if not canonical.lstrip().startswith(("def ", "import ", "from ")) else canonical


def completion(spec: dict, row: dict) -> str:
    """The reference solution of one normalised row, as the continuation of the template's prefill."""
    kind, prefill = spec["scorer"], templates.prefill(spec.get("prompt_template"))
    if kind == "math" and row.get("answer") not in (None, ""):
        text = f"The final answer is \\boxed{{{row['answer']}}}."
    elif kind == "choice" and row.get("answer"):
        text = f"The correct option is the reference answer.\nAnswer: {row['answer']}"
    elif kind == "evalplus" and _code(row):
        text = f"```python\n{_code(row).rstrip()}\n```\n"
    else:
        raise GrloError(f"problem {row.get('id')!r} has no reference answer for a {kind} scorer",
                        field=f"{spec['name']} (known-answer row)")
    fence = "```python\n"
    if prefill.endswith(fence) and text.startswith(fence):
        return text[len(fence):]  # the prefill (EvalPlus) already opened the fence
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--benchmarks", nargs="+", required=True)
    p.add_argument("--data-dir", required=True, help="the prepared benchmark files (NAME.jsonl)")
    p.add_argument("--output-dir", required=True, help="writes NAME.jsonl and NAME.meta.json per benchmark")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    plans = []
    for bench in args.benchmarks:  # everything is checked before anything is written
        spec = spec_mod.benchmark_spec(bench, cfg)
        path = Path(args.data_dir) / f"{bench}.jsonl"
        if not path.is_file():
            raise GrloError("benchmark file not prepared (run the download_benchmark rule)", path=str(path))
        rows = spec_mod.select_rows(read_jsonl(path), spec.get("limit"))
        plans.append((bench, spec, [(r, completion(spec, r)) for r in rows]))
    out_dir = Path(args.output_dir)
    for bench, spec, pairs in plans:
        out = out_dir / f"{bench}.jsonl"
        write_jsonl(out, ({"id": r["id"], "prompt": r.get("prompt"), "completions": [c], "finish_reasons": ["stop"]}
                          for r, c in pairs))
        write_json(out_dir / f"{bench}.meta.json", {
            "model": REFERENCE_MODEL, "benchmark": bench, "n_problems": len(pairs), "backend": "reference answers",
            "sampling": None, "assistant_prefill": templates.prefill(spec.get("prompt_template")),
            "note": "reference solutions written as the prompt asks; not a model"})
        print(f"known answers for {len(pairs)} problems of {bench} -> {out}")
    return 0
