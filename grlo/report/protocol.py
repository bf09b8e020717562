"""`grlo protocol-card`: results/protocol.md, the evaluation protocol as the code will run it.

Generated from the registries (grlo/registry/*.yaml), the lock file and the config, never written by hand: for every
benchmark its source with the pinned revision and sha256, prompt template (and assistant prefill), extractor,
scorer, metric and k; for every evaluated model its weights' source and pin, its turn-end stop token and chat
options; for every (model, benchmark) the sampling settings, stop tokens, k and budget exactly as `grlo generate`
resolves them (grlo.generation.eval_settings). Every non-obvious choice carries its source, or says it is our
assumption (registry `sampling_note`). No downloads, no GPU; deterministic (no date), so the committed card changes
only when the protocol does.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from grlo import config as C
from grlo import lock, registry
from grlo.errors import GrloError
from grlo.eval import deviations, sandbox
from grlo.eval.scorers import KINDS, alpacaeval, evalplus, lcb
from grlo.generation import eval_settings
from grlo.io import write_text
from grlo.models.ids import eval_models, resolve_eval_model, split_model_id
from grlo.registry import templates
from grlo.report.common import markdown_table


# The config sections the protocol depends on (the hash in the card's header).
PROTOCOL_SECTIONS = ("mode", "seed", "backbones", "generation", "evaluation", "lock", "rlvr")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def _pin(cfg: dict, section: str, name: str, src: dict) -> tuple[str, str]:
    """(revision, sha256) as text, each saying where the pin comes from."""
    kind = src.get("kind")
    if kind in ("fixture", "package", "gguf_wheel", "tiny_reward", "local"):
        detail = {"fixture": lambda: f"fixture grlo/data/fixtures/{src.get('file')} (in this repository)",
                  "package": lambda: f"PyPI package {src.get('package')} (pinned in pyproject.toml)",
                  "gguf_wheel": lambda: f"PyPI wheel {src.get('package')}=={src.get('version')}",
                  "tiny_reward": lambda: f"built from seed {src.get('seed')}",
                  "local": lambda: f"local directory {src.get('path')}"}[kind]()
        sha = src.get("file_sha256") or src.get("wheel_sha256") or ""
        return detail, (f"`{sha}` (registry)" if sha else "n/a")
    e = lock.entry(cfg, section, name, src) if lock.lock_path(cfg) else None
    e = e or {}
    if kind == "url":
        rev = "release asset (URL)"
    elif src.get("revision"):
        rev = f"`{src['revision']}` (registry)"
    elif e.get("revision"):
        rev = f"`{e['revision']}` (lock file)"
    else:
        rev = "**unpinned**: resolved at first fetch and recorded in the lock file (`grlo lock`)"
    files = ([src["url"].rsplit("/", 1)[-1]] if kind == "url" else
             list(src.get("files") or ([src["file"]] if src.get("file") else [])))
    shas = src.get("sha256")
    shas = shas if isinstance(shas, list) else [shas] * len(files)
    locked = e.get("files") or {}
    parts = []
    for f, sha in zip(files, shas):
        if sha:
            parts.append(f"{f}: `{sha}` (registry)")
        elif locked.get(f):
            parts.append(f"{f}: `{locked[f]}` (lock file)")
        else:
            parts.append(f"{f}: **unpinned** (recorded at first fetch)")
    if section == "models":
        parts = [f"{len(locked)} weight file sha256s (lock file)"] if locked else ["weight sha256s recorded at first fetch (lock file)"]
    return rev, "; ".join(parts) or "n/a"


def _display(path: Path | None) -> str:
    if path is None:
        return "none"
    return str(path.relative_to(C.REPO_ROOT)) if path.is_relative_to(C.REPO_ROOT) else str(path)


def _where(src: dict) -> str:
    kind = src.get("kind")
    if kind == "url":
        return src["url"]
    if kind in ("hub", "hub_dataset"):
        files = src.get("files") or ([src["file"]] if src.get("file") else [])
        prefix = "https://huggingface.co/" + ("datasets/" if kind == "hub_dataset" else "")
        return prefix + src["repo"] + (f" ({', '.join(files)})" if files else "")
    return kind or "?"


def benchmark_rows(cfg: dict) -> list[list[str]]:
    mode = cfg["mode"]
    rows = []
    for b in C.get(cfg, "evaluation.benchmarks") or []:
        e = registry.benchmark(b)
        src = registry.source(e, mode, b)
        rev, sha = _pin(cfg, "benchmarks", b, src)
        tmpl = e.get("prompt_template")
        prefill = templates.prefill(tmpl)
        scorer = e.get("scorer")
        doc = _first_line(importlib.import_module(KINDS[scorer]).__doc__) if scorer in KINDS else ""
        rows.append([f"{b} ({e.get('label')})", _where(src), rev, sha,
                     f"`{tmpl}`" + (f" + assistant prefill `{prefill.strip()[:60]}`" if prefill else ""),
                     f"{scorer}: {doc}", e.get("metric", ""), e.get("sampling_note") or "**not stated**"])
    return rows


def model_rows(cfg: dict) -> list[list[str]]:
    mode, rows, seen = cfg["mode"], [], set()
    for m in eval_models(cfg):
        family = split_model_id(m)[0]
        r = resolve_eval_model(cfg, m)
        # the weights: a fetched registry model (models/NAME), or a checkpoint this workflow trains from the family
        name = r["path"].split("/")[1] if r["path"].startswith("models/") else None
        if name is not None and name in registry.models():
            entry = registry.model(name)
            src = registry.source(entry, mode, name)
            rev, sha = _pin(cfg, "models", name, src) if name not in seen else ("as above", "as above")
            seen.add(name)
            weights = f"{entry.get('label', name)}: {_where(src)}"
        else:
            rev, sha = "trained by this workflow", f"recorded in {r['path']}/"
            weights = f"{r['stage']} checkpoint trained from {registry.model(family).get('label', family)}"
        fam = registry.model(family)
        end = registry.source(fam, mode, family).get("turn_end")
        rows.append([m, weights, rev, sha, f"`{end}`" if end else "none (eos only)", str(r["chat"] or "template default"),
                     fam.get("sampling_note") or "benchmark defaults (registry `sampling`)"])
    return rows


def settings_rows(cfg: dict) -> list[list]:
    rows = []
    for m in eval_models(cfg):
        for b in C.get(cfg, "evaluation.benchmarks") or []:
            s, _, limit = eval_settings(cfg, m, b)
            rows.append([m, b, s.temperature, s.top_p, s.top_k if s.top_k > 0 else "off", s.presence_penalty,
                         s.max_tokens, s.n, ", ".join(f"`{t}`" for t in s.stop_tokens) or "eos only",
                         "all" if limit is None else limit])
    return rows


def judge_lines(cfg: dict) -> list[str]:
    """The AlpacaEval judge as the scoring job will call it: id, revision, annotator, paper judge or substitute."""
    judge = alpacaeval.judge_settings(cfg)
    src = alpacaeval.judge_source(cfg)
    rev = judge.get("revision")
    if not rev and src is not None and lock.lock_path(cfg):
        rev = (lock.entry(cfg, *src) or {}).get("revision")
    rec = alpacaeval.judge_record({**judge, "revision": rev})
    where = ("a vLLM server started by the scoring job (log: logs/score/<model>/alpacaeval2.judge.log)"
             if judge.get("serve") else (judge.get("base_url") or "OpenAI's API"))
    lines = ["### AlpacaEval judge", "",
             f"- kind `{rec['kind']}`, model `{rec['model']}`, revision "
             + (f"`{rev}`" if rev else "**unpinned** (the lock file pins it: `grlo lock`)")
             + f", annotator `{rec['annotator']}`, served by {where}.",
             "- " + ("the paper's judge (AlpacaEval 2's official annotator and judge model)." if rec["paper_judge"] else
                     f"a substitute for the paper's judge ({alpacaeval.PAPER_JUDGE['model']} with "
                     f"{alpacaeval.PAPER_JUDGE['annotator']}, shut down by OpenAI on "
                     f"{alpacaeval.RETIRED[alpacaeval.PAPER_JUDGE['model']]}): its LC win rate is another "
                     "measurement and is never compared with the paper's AE2-LC."),
             f"- published agreement: {rec['agreement'] or 'none published for this judge'}.",
             "- annotations cached per model beside the score (scores/<model>/alpacaeval2.judge-<hash>.annotations.json):"
             " a rerun asks the judge only for what is missing; df_gamed.csv (the LC step's instruction difficulties) "
             "is fetched with the benchmark at its pinned revision, so scoring calls nothing but the judge; no judge: "
             "the cell reads `not run (no judge)` with the reason.", ""]
    return lines


def time_limit_lines() -> list[str]:
    floors = sorted({evalplus.min_time_limit(registry.benchmark(b)) for b in ("humaneval_plus", "mbpp_plus")})
    return ["### Code time limits", "",
            f"- HumanEval+ / MBPP+: EvalPlus's per-input limit max({', '.join(f'{f:g}' for f in floors)} s, 4 x the "
            "canonical solution's time); the 4 s floor is upstream EvalPlus's since commit af49138 (\"to minimize "
            "false positives\"); the 0.3.1 release has 1 s.",
            f"- LiveCodeBench: {lcb.TEST_TIMEOUT_S} s per test and (6 + 1) x n_tests + 5 s per problem, as LCB's "
            "runner (run_test timeout 6; check_correctness join).", ""]


def grader_lines(cfg: dict) -> list[str]:
    """The official grader of each scorer, the test that compares ours with it, and every declared deviation."""
    rows = [[f"`{kind}`", official, test] for kind, (official, test) in deviations.GRADERS.items()]
    devs = [[f"`{d['id']}`", f"`{d['scorer']}`", d["ours"], d["official"], d["reason"]] for d in deviations.DEVIATIONS]
    return ["## Graders and parity with the official ones", "",
            "Each scorer is checked against its benchmark's official grader: shared cases go through both and the "
            "verdicts must match, or, where the grader is not on PyPI, the tests pin its rules with their source "
            "lines. A verdict may differ only where a deviation below is declared (grlo/eval/deviations.py).", "",
            markdown_table(["scorer", "official grader", "parity test"], rows), "",
            "### Declared deviations", "",
            markdown_table(["id", "scorer", "ours", "official grader", "reason"], devs), "",
            *[f"- {n}" for n in deviations.NOTES], "", *time_limit_lines(), *judge_lines(cfg)]


def render(cfg: dict) -> str:
    gen = cfg.get("generation") or {}
    vllm = gen.get("vllm") or {}
    lines = [
        "# Evaluation protocol card",
        "",
        f"Generated by `grlo protocol-card` from grlo/registry/models.yaml, grlo/registry/benchmarks.yaml, the lock "
        f"file and the config (mode `{cfg['mode']}`, hash of its protocol sections "
        f"`{C.config_hash({k: cfg.get(k) for k in PROTOCOL_SECTIONS})}`). Do not edit: rebuild with "
        "`snakemake results/protocol.md` (or `grlo protocol-card`).",
        "",
        "GRLO's own evaluation protocol is not published: every setting below either names its source or is marked "
        "as our assumption. Order of precedence for sampling: benchmark registry < model family < config "
        "`evaluation.overrides`.",
        "",
        "## Generation",
        "",
        f"- back-end `{gen.get('backend')}`, weights dtype `{gen.get('dtype')}`; vLLM tensor parallel "
        f"{vllm.get('tensor_parallel_size')}, gpu_memory_utilization {vllm.get('gpu_memory_utilization')}, "
        f"max_model_len {vllm.get('max_model_len')} capped by each model's `max_position_embeddings` (32,768 for the "
        "Qwen3 base models).",
        "- Prompts: the benchmark's prompt template is the user message (LiveCodeBench: LCB's system and user turns "
        "for the model's mode); the model's chat template is applied (`enable_thinking` per mode) and tokenized once "
        "(the template writes its own BOS). A template with an assistant prefill (EvalPlus) is rendered as EvalPlus's "
        "make_raw_chat_prompt renders it: the chat with the prefilled assistant turn through the model's template, "
        "cut after the prefill, so the template's own assistant opening (Qwen3: its think block) comes first.",
        "- Turn end: generation stops at the model's turn-end token (a stop token id in vLLM and transformers, checked "
        "against the chat template at load), so text written past the assistant turn is never scored. Every "
        "completion records why it ended: `stop` (turn end / stop string), `eos`, `length`, or vLLM's other reasons "
        "as reported (`abort`, `error`).",
        f"- Seed {cfg.get('seed')}. Library versions, batch settings and the model manifest are recorded in each "
        "`generations/<model>/<bench>.meta.json`.",
        f"- Source pins: lock file `{_display(lock.lock_path(cfg))}`, "
        f"`lock.frozen: {str(lock.frozen(cfg)).lower()}` (true: an unpinned or changed source stops the run).",
        "",
        "## Benchmarks",
        "",
        markdown_table(["benchmark", "source", "revision", "sha256", "prompt template", "extractor / scorer", "metric",
                        "k and budget: source"], benchmark_rows(cfg)),
        "",
        *grader_lines(cfg),
        "## Code sandbox (HumanEval+, MBPP+, LiveCodeBench)",
        "",
        "Limits our sandbox sets that EvalPlus's own harness does not (grlo/eval/sandbox.py `PROTOCOL_NOTES`; "
        "grlo/eval/README.md):",
        "",
        *(f"- {note}" for note in sandbox.PROTOCOL_NOTES),
        "",
        "## Models",
        "",
        markdown_table(["model", "weights", "revision", "sha256", "turn end (stop token)", "chat options",
                        "sampling: source"], model_rows(cfg)),
        "",
        "## Sampling per model and benchmark (as `grlo generate` runs it)",
        "",
        markdown_table(["model", "benchmark", "temperature", "top-p", "top-k", "presence penalty", "max new tokens",
                        "k", "stop tokens", "problems"], settings_rows(cfg)),
        "",
    ]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--output", required=True, help="results/protocol.md")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    try:
        text = render(cfg)
    except KeyError as e:
        raise GrloError(f"registry entry lacks {e}", field="protocol card") from None
    write_text(args.output, text)
    print(f"protocol card -> {args.output}")
    return 0
