"""Config loading: YAML files deep-merged in order, validated once against workflow/schemas/config.schema.yaml."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from grlo import registry
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


# Plain scalars that YAML 1.1 (PyYAML, Snakemake) and YAML 1.2 read differently: refused, so every reader of a config
# file sees the same value. 1.1 reads `010` as octal 8, `1:30` as 90 (base 60), `1_000` as 1000, `0b11` as 3 and
# yes/no/on/off as booleans; 1.2 reads 10, and the others as strings.
_YAML11_ONLY = (
    (re.compile(r"[-+]?0[0-9_]+"), "a leading zero is octal in YAML 1.1 ({v1} here) and decimal in YAML 1.2",
     "write the number without the leading zero, or quote it"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"),
     "YAML 1.1 reads a:b as base 60 ({v1} here) and YAML 1.2 as a string", "quote it"),
    (re.compile(r"[-+]?0b[01_]+"), "binary is YAML 1.1 only ({v1} here)", "write it in decimal"),
    (re.compile(r"[-+]?[0-9.][0-9_.]*_[0-9_.]*(e[-+]?[0-9]+)?", re.I),
     "YAML 1.1 ignores the underscores ({v1} here), YAML 1.2 reads a string", "write it without underscores"),
    (re.compile(r"yes|no|on|off", re.I), "YAML 1.1 reads it as a boolean ({v1} here), YAML 1.2 as a string",
     "write true or false, or quote it"),
)


def _strict_yaml_check(node, path: str, where: str = "") -> None:
    """Duplicate keys (PyYAML keeps the last silently) and YAML 1.1-only scalars are refused naming file and key."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            sub = f"{where}.{key}" if where else str(key)
            if key is not None and key != "<<":
                if key in seen:
                    raise GrloError(f"duplicate key (lines {seen[key]} and {k.start_mark.line + 1}; YAML keeps only "
                                    "the last): remove one", path=path, field=sub)
                seen[key] = k.start_mark.line + 1
            _strict_yaml_check(v, path, sub)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _strict_yaml_check(v, path, f"{where}[{i}]")
    elif isinstance(node, yaml.ScalarNode) and node.style is None and node.tag.endswith((":int", ":float", ":bool")):
        for pattern, why, fix in _YAML11_ONLY:
            if pattern.fullmatch(node.value):
                v1 = yaml.safe_load(node.value)
                raise GrloError(f"line {node.start_mark.line + 1}: {node.value!r} is ambiguous: "
                                f"{why.format(v1=v1)}: {fix}", path=path, field=where or "<top level>")


def load_file(path: str | os.PathLike) -> dict:
    text = read_input(path, "config file")
    try:
        if not str(path).endswith(".json"):
            _strict_yaml_check(yaml.compose(text, Loader=yaml.SafeLoader), str(path))
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise GrloError(f"cannot parse config: line {e.lineno}, column {e.colno}: {e.msg}", path=str(path)) from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        if mark is not None and problem:
            msg = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        else:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GrloError(f"cannot parse config: {msg}", path=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GrloError("config must be a mapping at the top level", path=str(path))
    return data


def preflight(paths: Iterable[str | os.PathLike]) -> None:
    """For the Snakefile, before Snakemake parses a config file itself (its YAML error does not name the file):
    exit with one line naming the file, line and problem."""
    try:
        for p in paths:
            load_file(p)
    except GrloError as e:
        sys.exit(f"error: {e}")


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


def validate_schema(cfg: dict, source: str = "config") -> None:
    """Raise a one-line GrloError naming the key, the value and what is allowed."""
    import jsonschema  # heavy: jsonschema

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


def validate(cfg: dict, source: str = "config") -> None:
    """Schema, then the checks the schema cannot express (registry names, batch vs pinned prompt count): every
    problem known before a download is one GrloError naming the source, the key and the fix."""
    validate_schema(cfg, source)
    __import__("grlo.models.custom").models.custom.register(cfg, source)  # evaluation.custom_models
    check_registry_names(cfg, source)
    check_batch_vs_pinned_prompts(cfg, source)


def _benchmark_keys(cfg: dict) -> list[tuple[str, Any]]:
    """(dotted key, name) for every benchmark the config names."""
    out = [(f"evaluation.benchmarks[{i}]", b) for i, b in enumerate(get(cfg, "evaluation.benchmarks") or [])]
    out += [(f"evaluation.overrides.{b}", b) for b in (get(cfg, "evaluation.overrides") or {})]
    out += [(f"report.competition_math[{i}]", b) for i, b in enumerate(get(cfg, "report.competition_math") or [])]
    out += [(f"report.forecast.benchmark_sizes.{b}", b) for b in (get(cfg, "report.forecast.benchmark_sizes") or {})]
    return out


def _model_keys(cfg: dict) -> list[tuple[str, Any]]:
    """(dotted key, registry model name) for every model the config names."""
    out = [("backbones.primary", get(cfg, "backbones.primary"))]
    out += [(f"backbones.extra[{i}]", m) for i, m in enumerate(get(cfg, "backbones.extra") or [])]
    out += [("reward_model", get(cfg, "reward_model"))]
    out += [(f"evaluation.released[{i}]", str(m).split("--")[0]) for i, m in enumerate(get(cfg, "evaluation.released") or [])]
    if get(cfg, "rlvr.mode") == "checkpoint":
        out.append(("rlvr.checkpoint.model", get(cfg, "rlvr.checkpoint.model")))
    if get(cfg, "evaluation.judge.kind") == "reward_model":
        out.append(("evaluation.judge.model", get(cfg, "evaluation.judge.model")))
    return [(k, v) for k, v in out if v is not None]


def check_registry_names(cfg: dict, source: str = "config") -> None:
    for kind, known, keys, reg in (("benchmark", registry.benchmarks(), _benchmark_keys(cfg), "benchmarks.yaml"),
                                   ("model", registry.models(), _model_keys(cfg), "models.yaml")):
        for key, name in keys:
            if name not in known:
                raise GrloError(f"unknown {kind} {name!r} (grlo/registry/{reg} has: {', '.join(sorted(known))})",
                                path=source, field=key)


def pinned_prompt_count(sha256: str | None) -> int | None:
    """Prompt count of a pinned prompt file, known from its checksum entry (grlo/registry/prompts.yaml)."""
    entry = registry.prompt_files().get(str(sha256 or "").lower())
    return int(entry["count"]) if entry else None


def check_batch_vs_pinned_prompts(cfg: dict, source: str = "config") -> None:
    """A train batch larger than a pinned prompt file fails in the dry run, not after the downloads (unless
    grlo.adapt_batch_size shrinks it, as grlo.train.batching.resolve_batch_sizes does)."""
    if get(cfg, "prompts.path") or not get(cfg, "prompts.url") or get(cfg, "grlo.adapt_batch_size"):
        return
    count, batch = pinned_prompt_count(get(cfg, "prompts.sha256")), get(cfg, "grlo.train_batch_size")
    if count is not None and isinstance(batch, int) and batch > count:
        raise GrloError(f"train_batch_size {batch} is larger than the {count} prompts of the pinned prompt file "
                        f"(sha256 {get(cfg, 'prompts.sha256')}): set grlo.adapt_batch_size: true, "
                        f"grlo.train_batch_size <= {count}, or prompts.path to your full prompt file",
                        path=source, field="grlo.train_batch_size")


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


def prefix(cfg: dict) -> str:
    """The outdir as the prefix of every output path: "" or "OUTDIR/"."""
    out = (cfg.get("outdir") or "").rstrip("/")
    return f"{out}/" if out else ""
