"""The model and benchmark registries (declarative YAML beside this file) and lookups by mode."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from grlo.errors import GrloError

_DIR = Path(__file__).resolve().parent
REGISTRY_DIR = _DIR


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return yaml.safe_load((_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}


# Models added by the config (evaluation.custom_models, grlo.models.custom), registered at config validation.
_CUSTOM: dict = {}


def set_custom_models(entries: dict) -> None:
    clash = sorted(set(entries) & set(_load("models")))
    if clash:
        raise GrloError(f"custom model {clash[0]!r} has the name of a registry model: rename it",
                        field="evaluation.custom_models")
    _CUSTOM.clear()
    _CUSTOM.update(entries)


def models() -> dict:
    return {**_load("models"), **_CUSTOM} if _CUSTOM else _load("models")


def benchmarks() -> dict:
    return _load("benchmarks")


def prompt_files() -> dict:
    """Pinned prompt files by sha256: {count, source}."""
    return {str(k).lower(): v for k, v in (_load("prompts") or {}).items()}


def model(name: str) -> dict:
    reg = models()
    if name not in reg:
        raise GrloError(f"unknown model {name!r} (registry: {', '.join(sorted(reg))})", path=str(_DIR / "models.yaml"))
    return reg[name]


def benchmark(name: str) -> dict:
    reg = benchmarks()
    if name not in reg:
        raise GrloError(f"unknown benchmark {name!r} (registry: {', '.join(sorted(reg))})", path=str(_DIR / "benchmarks.yaml"))
    return reg[name]


def source(entry: dict, mode: str, name: str = "") -> dict:
    src = (entry.get("source") or {}).get(mode)
    if not src:
        raise GrloError(f"{name or 'entry'} has no source for mode {mode!r}", field=f"{name}.source.{mode}")
    return src
