"""Config loading: YAML files deep-merged in order, validated once against workflow/schemas/config.schema.yaml."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from grlo.errors import GrloError
from grlo.io import read_input

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def deep_merge(base: dict, over: dict) -> dict:
    """Recursive dict merge (same semantics as Snakemake's --configfile overlay): `over` wins."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_file(path: str | os.PathLike) -> dict:
    text = read_input(path, "config file")
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GrloError(f"cannot parse config: {msg}", path=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GrloError("config must be a mapping at the top level", path=str(path))
    return data


def load(paths: Iterable[str | os.PathLike], validate_it: bool = True) -> dict:
    cfg: dict = {}
    paths = list(paths)
    for p in paths:
        cfg = deep_merge(cfg, load_file(p))
    if validate_it:
        validate(cfg, source=", ".join(str(p) for p in paths))
    return cfg


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def _allowed(err) -> str:
    s = err.schema
    if "enum" in s:
        return "one of " + ", ".join(repr(v) for v in s["enum"])
    if err.validator == "additionalProperties":
        return "known keys: " + ", ".join(sorted(s.get("properties", {})))
    if err.validator == "required":
        return "required keys: " + ", ".join(s.get("required", []))
    parts = []
    if "type" in s:
        parts.append(f"type {s['type']}")
    for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "pattern", "minItems", "minLength"):
        if k in s:
            parts.append(f"{k} {s[k]}")
    return ", ".join(parts) or err.validator


def validate(cfg: dict, source: str = "config") -> None:
    """Raise a one-line GrloError naming the key, the value and what is allowed."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        key = ".".join([*map(str, err.absolute_path), extra[0]]) if extra else key
        raise GrloError(f"unknown key {key!r} ({_allowed(err)})", path=source)
    if err.validator == "required":
        raise GrloError(f"{err.message} at {key!r}", path=source)
    value = json.dumps(err.instance, default=str)
    if len(value) > 80:
        value = value[:77] + "..."
    raise GrloError(f"invalid value for {key!r}: {value} (allowed: {_allowed(err)})", path=source)


def config_hash(cfg: Any) -> str:
    """Stable short hash of (a section of) the config, written into table headers and used as a rerun trigger."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
