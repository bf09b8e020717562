"""Path and target logic for the Snakemake rules (kept here so the Snakefiles stay declarative).

Top layer (docs/architecture.md): only the Snakefile, cli, doctor and status import this module. Evaluated model ids
and what each one evaluates live in grlo.models.ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from grlo import config as C
from grlo import registry
from grlo.config import prefix  # noqa: F401 - the rules, doctor and status read it here
from grlo.eval.reference import REFERENCE_MODEL, benchmarks_with_reference
from grlo.io import write_text
# Model ids and which weights each evaluates (grlo.models.ids); the rules, doctor and status read them here.
from grlo.models.ids import STAGES, VARIANTS, eval_models, resolve_eval_model, split_model_id  # noqa: F401
from grlo.models.ids import rlvr_model_source
from grlo.run_plan import container_image, grlo_engine, rule_gpus  # noqa: F401 - the rules read them here


def write_resolved_config(cfg: dict, path: str) -> str:
    """Write the merged config for the commands; rewrite only when it changed so nothing reruns needlessly."""
    text = json.dumps(cfg, indent=1, sort_keys=True, default=str) + "\n"
    p = Path(path)
    if not p.exists() or p.read_text(encoding="utf-8") != text:
        write_text(p, text)
    return str(p)


def section_hash(cfg: dict, *sections: str) -> str:
    """Rule params that change (and so trigger a rerun) exactly when the named config sections change."""
    return C.config_hash({s: C.get(cfg, s) for s in (*sections, "mode")})


def eval_settings_hash(cfg: dict, model_id: str) -> str:
    """Everything that changes a model's generations: a change reruns that model's generation job."""
    return C.config_hash({"model": resolve_eval_model(cfg, model_id),
                          "source": registry.model(split_model_id(model_id)[0]),  # family sampling, turn_end
                          "benches": {b: registry.benchmark(b) for b in benchmarks(cfg)},
                          "overrides": C.get(cfg, "evaluation.overrides"), "generation": cfg.get("generation"),
                          "seed": cfg.get("seed")})


def benchmark_hash(cfg: dict, bench: str) -> str:
    return C.config_hash({"entry": registry.benchmark(bench), "mode": cfg["mode"]})


def rlvr_verifier_input(cfg: dict) -> list[str]:
    """The model-based verifier is a fetched model only when the config selects it."""
    if C.get(cfg, "rlvr.reward.verifier") == "general-verifier":
        return [f"{prefix(cfg)}models/general-verifier"]
    return []


def rlvr_init_path(backbone: str, stage: str) -> str:
    """The RLVR recipe starts from the base model; the GRLO -> RLVR stage from the GRLO checkpoint."""
    return f"checkpoints/{backbone}/grlo/final" if stage == "grlo-rlvr" else f"models/{backbone}"


def benchmarks(cfg: dict) -> list[str]:
    return list(cfg["evaluation"]["benchmarks"])


def score_files(cfg: dict, models: list[str] | None = None, benches: list[str] | None = None) -> list[str]:
    o = prefix(cfg)
    models = eval_models(cfg) if models is None else models
    benches = benchmarks(cfg) if benches is None else benches
    return [f"{o}scores/{m}/{b}.json" for m in models for b in benches]


def table_models(cfg: dict, table: str) -> list[str]:
    """Evaluated models whose scores a table reads (so `snakemake results/tableN.csv` builds only those)."""
    p = cfg["backbones"]["primary"]
    primary = eval_models(cfg, "primary")
    pick = lambda *vs: [f"{p}--{v}" for v in vs if f"{p}--{v}" in primary]  # noqa: E731
    return {
        "table1": primary + eval_models(cfg, "released") + eval_models(cfg, "custom"),
        "table2": [],
        "table3": pick("grlo") + eval_models(cfg, "released") + eval_models(cfg, "custom"),
        "table4": pick("base", "grlo", "rlvr", "grlo-rlvr"),
        "table5": pick("base", "grlo") + eval_models(cfg, "extra"),
    }[table]


def reference_benchmarks(cfg: dict) -> list[str]:
    """Benchmarks of the known-answer row (evaluation.known_answer_row; grlo.eval.reference), [] when it is off."""
    return benchmarks_with_reference(cfg) if C.get(cfg, "evaluation.known_answer_row") else []


def browse_models(cfg: dict, bench: str) -> list[str]:
    """Models on a benchmark's per-problem browser page: every evaluated model, plus the known-answer row where the
    benchmark has one."""
    return eval_models(cfg) + ([REFERENCE_MODEL] if bench in reference_benchmarks(cfg) else [])


def table_scores(cfg: dict, table: str) -> list[str]:
    extra = score_files(cfg, [REFERENCE_MODEL], reference_benchmarks(cfg)) if table == "table1" else []
    return score_files(cfg, table_models(cfg, table)) + extra


def _cost_inputs(cfg: dict) -> dict:
    o, p = prefix(cfg), cfg["backbones"]["primary"]
    d = {"prompt_stats": f"{o}data/prompts/{p}/stats.json", "grlo_metrics": f"{o}checkpoints/{p}/grlo/metrics.jsonl"}
    if rlvr_model_source(cfg, p) == "train":
        d.update(rlvr_stats=f"{o}data/rlvr/stats.json", rlvr_metrics=f"{o}checkpoints/{p}/rlvr/metrics.jsonl")
    return d


def table_extra_inputs(cfg: dict, table: str) -> list[str]:
    """Table 2 reads the primary backbone's training runs' benchmark records from the benchmarks directory: each of
    those runs the evaluated models need is an input (else a run that ends after the table, e.g. the GRLO -> RLVR
    stage, is missing from it by chance of scheduling)."""
    if table != "table2":
        return []
    own = f"{prefix(cfg)}checkpoints/{cfg['backbones']['primary']}/"
    return sorted(set(_cost_inputs(cfg).values()) | {m for m in training_metrics(cfg) if m.startswith(own)})


def table_extra_args(cfg: dict, table: str) -> str:
    if table != "table2":
        return ""
    d = _cost_inputs(cfg)
    args = f"--benchmarks-dir {prefix(cfg)}benchmarks --prompt-stats {d['prompt_stats']}"
    # the GRLO run's manifest (written with metrics.jsonl, an input): its batch adaptation and verl deviations
    args += f" --grlo-manifest {prefix(cfg)}checkpoints/{cfg['backbones']['primary']}/grlo/final/manifest.json"
    return args + (f" --rlvr-stats {d['rlvr_stats']}" if "rlvr_stats" in d else "")


def training_metrics(cfg: dict) -> list[str]:
    """metrics.jsonl of every training run the evaluated models need."""
    o, runs = prefix(cfg), []
    for m in eval_models(cfg):
        r = resolve_eval_model(cfg, m)
        if r["stage"]:
            runs.append(f"{o}checkpoints/{r['source']}/{r['stage']}/metrics.jsonl")
    return sorted(set(runs))


def all_targets(cfg: dict) -> list[str]:
    o = prefix(cfg)
    tables = [f"{o}results/table{i}.csv" for i in range(1, 6)]
    lmeval = [f"{o}results/lmeval/{cfg['backbones']['primary']}.json"]
    pages = [f"{o}results/report/overview.html"] + [f"{o}results/browser/{b}.html" for b in benchmarks(cfg)]
    return tables + lmeval + [f"{o}results/{x}" for x in ("claims.csv", "gpu_hours.csv", "forecast.csv", "figures", "protocol.md")] + pages


def judge_inputs(cfg: dict, bench: str) -> list[str]:
    """A judge that is one of our fetched models (smoke: the tiny RM) must exist before a chat benchmark is scored."""
    judge = C.get(cfg, "evaluation.judge") or {}
    if registry.benchmark(bench).get("scorer") == "alpacaeval" and judge.get("kind") == "reward_model":
        return [f"models/{judge['model']}"]
    return []
