"""Evaluate any checkpoint: config `evaluation.custom_models` adds models to the evaluation without a registry edit.

    evaluation:
      custom_models:
        - name: my-sft                 # row id `my-sft--custom` in tables 1 and 3 (lower case, digits, '.', '-')
          hub_id: org/repo             # a hub model, pinned: revision must be a 40-hex commit
          revision: 0123456789abcdef0123456789abcdef01234567
          turn_end: "<|im_end|>"       # token the chat template writes after an assistant turn (null: none)
          chat: {enable_thinking: false}           # chat-template options (optional)
          sampling: {temperature: 0.6, top_p: 0.95, max_tokens: 8192}   # optional; default: each benchmark's
          label: My SFT model          # optional row label (default: name)
        - name: local-ckpt
          path: /scratch/ckpt/final    # or a local HF model directory; relative = inside the run's outdir
          turn_end: "<|im_end|>"

Each entry becomes a registry-shaped model entry (role `custom`), registered for this process when the config is
validated (grlo.config.validate, which every command and the Snakefile run), so generation, fetching (hub models go
through `grlo fetch-model` at the pinned revision), scoring and the tables treat it as any other model.
"""

from __future__ import annotations

import re

from grlo import registry
from grlo.errors import GrloError

VARIANT = "custom"
_NAME = re.compile(r"^[a-z0-9.]+(?:-[a-z0-9.]+)*$")  # no '--' (the model id separator)
_REV = re.compile(r"^[0-9a-f]{40}$")
_KEYS = {"name", "path", "hub_id", "revision", "turn_end", "chat", "sampling", "sampling_by_benchmark", "label"}
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_tokens", "presence_penalty", "k")


def model_id(name: str) -> str:
    return f"{name}--{VARIANT}"


def entries(cfg: dict, source: str = "config") -> dict[str, dict]:
    """{name: registry-shaped entry} for the config's custom models; every problem is one GrloError naming the key."""
    items = ((cfg or {}).get("evaluation") or {}).get("custom_models") or []
    if not isinstance(items, list):
        raise GrloError("must be a list of {name, path | hub_id + revision, turn_end, ...}", path=source,
                        field="evaluation.custom_models")
    out: dict[str, dict] = {}
    for i, c in enumerate(items):
        key = f"evaluation.custom_models[{i}]"
        if not isinstance(c, dict):
            raise GrloError("must be a mapping {name, path | hub_id + revision, turn_end}", path=source, field=key)
        extra = sorted(set(c) - _KEYS)
        if extra:
            raise GrloError(f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(_KEYS))})", path=source,
                            field=f"{key}.{extra[0]}")
        name = c.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise GrloError(f"name {name!r} must be lower-case letters, digits, '.' and single '-' (it names the row "
                            f"and the files)", path=source, field=f"{key}.name")
        if name in out:
            raise GrloError(f"duplicate custom model {name!r}", path=source, field=f"{key}.name")
        if bool(c.get("path")) == bool(c.get("hub_id")):
            raise GrloError("give exactly one of path (a local model directory) or hub_id (+ revision)", path=source,
                            field=key)
        if "turn_end" not in c:
            raise GrloError("turn_end is required: the token the chat template writes after an assistant turn "
                            "(<|im_end|> for Qwen/ChatML, <|eot_id|> for Llama 3; null if none)", path=source,
                            field=f"{key}.turn_end")
        if c.get("hub_id"):
            rev = str(c.get("revision") or "")
            if not _REV.match(rev):
                raise GrloError(f"revision {c.get('revision')!r} must be the 40-hex commit of {c['hub_id']} (a hub "
                                f"model is evaluated pinned; see its 'Files and versions' history)", path=source,
                                field=f"{key}.revision")
            src = {"kind": "hub", "repo": c["hub_id"], "revision": rev}
        else:
            src = {"kind": "local", "path": str(c["path"])}
        src["turn_end"] = c["turn_end"]
        sampling = dict(c.get("sampling") or {})
        bad = sorted(set(sampling) - set(SAMPLING_KEYS))
        if bad:
            raise GrloError(f"unknown sampling key {bad[0]!r} (allowed: {', '.join(SAMPLING_KEYS)})", path=source,
                            field=f"{key}.sampling.{bad[0]}")
        out[name] = {"role": "custom", "label": c.get("label") or name, "source": {"paper": src, "smoke": src},
                     "chat": dict(c.get("chat") or {}), "sampling": sampling,
                     "sampling_by_benchmark": dict(c.get("sampling_by_benchmark") or {})}
    return out


def register(cfg: dict, source: str = "config") -> None:
    """Make the config's custom models known to grlo.registry for this process (replacing earlier ones)."""
    registry.set_custom_models(entries(cfg, source))


def model_ids(cfg: dict) -> list[str]:
    return [model_id(c["name"]) for c in ((cfg or {}).get("evaluation") or {}).get("custom_models") or []]


def weights_path(entry: dict, name: str) -> str:
    """Unprefixed path of the weights: a local directory as given (relative = inside the outdir), else the fetched
    snapshot models/<name>."""
    src = entry["source"]["paper"]
    return src["path"] if src["kind"] == "local" else f"models/{name}"
