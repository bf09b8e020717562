"""Benchmark registry access: one entry of grlo/registry/benchmarks.yaml merged with config overrides."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

from grlo.errors import GrloError

REGISTRY_PATH = Path(__file__).resolve().parent.parent / "registry" / "benchmarks.yaml"
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "data" / "fixtures"
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "k", "max_tokens")


@lru_cache(maxsize=1)
def registry() -> dict:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))


def benchmark_spec(name: str, cfg: dict | None = None) -> dict:
    """The registry entry for `name` with `evaluation.overrides.<name>` applied to its sampling and `limit`.

    Returned keys: name, domain, label, scorer, metric, prompt_template, source (the current mode's source),
    sampling {temperature, top_p, top_k, k, max_tokens}, limit (None = all rows), plus scorer-specific keys.
    """
    reg = registry()
    if name not in reg:
        raise GrloError(f"unknown benchmark {name!r} (known: {', '.join(sorted(reg))})", path=str(REGISTRY_PATH))
    spec = copy.deepcopy(reg[name])
    mode = (cfg or {}).get("mode", "paper")
    sources = spec.get("source", {})
    if mode not in sources:
        raise GrloError(f"benchmark {name!r} has no source for mode {mode!r}", path=str(REGISTRY_PATH))
    spec["source"] = sources[mode]
    spec["mode"] = mode
    spec["name"] = name
    spec["limit"] = None
    over = ((cfg or {}).get("evaluation", {}).get("overrides", {}) or {}).get(name, {}) or {}
    for key, value in over.items():
        if key == "limit":
            spec["limit"] = value
        elif key in SAMPLING_KEYS:
            spec["sampling"][key] = value
    return spec


def select_rows(rows: list[dict], limit: int | None) -> list[dict]:
    """The problems evaluated under `limit`: the first `limit` rows in file order (the same rule for generate and score)."""
    return rows if limit is None else rows[:limit]
