"""`grlo lock`: which hub sources a config uses, which of them are still unpinned, and pinning them in the lock file.

The lock file itself (read, look up, record, enforce lock.frozen on one fetch) is grlo/lock.py, which the fetching
commands below this layer use; this module sits with the workflow at the top (docs/architecture.md) because it asks
every part of the run which sources it fetches: the models evaluated, the benchmarks, the served AlpacaEval judge
and lm-eval's few-shot datasets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grlo import config as C
from grlo import registry
from grlo.data.benchmarks import fetch_raw_files
from grlo.download import hub_error
from grlo.errors import GrloError
from grlo.eval.lmeval import LMEVAL_DATASETS
from grlo.eval.scorers.alpacaeval import judge_source
from grlo.lock import frozen, lock_path, read, record, revision, stale
from grlo.models.ids import split_model_id


# ---------------------------------------------------------------- which sources a config uses

def used_models(cfg: dict) -> list[str]:
    names = [cfg["backbones"]["primary"], *(cfg["backbones"].get("extra") or []), cfg.get("reward_model")]
    names += [split_model_id(m)[0] for m in C.get(cfg, "evaluation.released") or []]
    if C.get(cfg, "rlvr.mode") == "checkpoint":
        names.append(C.get(cfg, "rlvr.checkpoint.model"))
    if C.get(cfg, "rlvr.reward.verifier") == "general-verifier":
        names.append("general-verifier")
    return list(dict.fromkeys(n for n in names if n))


def lmeval_sources(cfg: dict) -> list[tuple[str, str, dict]]:
    """lm-eval's own datasets for the base model's few-shot check (paper mode; grlo.eval.lmeval)."""
    if C.get(cfg, "mode") != "paper":
        return []
    return [("datasets", f"lmeval-{key}", {"kind": "hub_dataset", **src}) for key, src in LMEVAL_DATASETS.items()]


def sources(cfg: dict) -> list[tuple[str, str, dict]]:
    """(section, name, source) of every hub / url source the config's paper run fetches: models, benchmarks (with
    their support files), the served AlpacaEval judge and lm-eval's few-shot datasets."""
    out = []
    for name in used_models(cfg):
        src = (registry.model(name).get("source") or {}).get("paper") or {}
        if src.get("kind") == "hub":
            out.append(("models", name, src))
    for name in C.get(cfg, "evaluation.benchmarks") or []:
        src = (registry.benchmark(name).get("source") or {}).get("paper") or {}
        if src.get("kind") in ("hub_dataset", "url"):
            out.append(("benchmarks", name, src))
    judge = judge_source(cfg)
    if judge is not None:
        out.append(judge)
    return out + lmeval_sources(cfg)


def _files(src: dict) -> list[str]:
    if src.get("kind") == "url":
        return [src["url"].rsplit("/", 1)[-1]]
    return list(src.get("files") or ([src["file"]] if src.get("file") else [])) + list(src.get("support_files") or [])


def missing_pins(cfg: dict) -> list[str]:
    """Sources (and dataset files) pinned neither by the registry nor by the lock file."""
    data, out = read(cfg), []
    for section, name, src in sources(cfg):
        e = (data.get(section) or {}).get(name) or {}
        if e and stale(e, src):
            out.append(f"{section}.{name} (changed: locked {e.get('repo') or e.get('url')}@{e.get('revision')})")
            continue
        if src.get("kind") != "url" and not src.get("revision") and not e.get("revision"):
            out.append(f"{section}.{name} (revision)")
        if section == "benchmarks":
            shas = src.get("sha256")
            files = _files(src)
            shas = shas if isinstance(shas, list) else [shas] * len(files)
            shas = shas + [None] * (len(files) - len(shas))  # support files: pinned by the lock file
            for f, sha in zip(files, shas):
                if not sha and not (e.get("files") or {}).get(f):
                    out.append(f"{section}.{name} (sha256 of {f})")
        elif section in ("models", "judges") and not e.get("files"):
            out.append(f"{section}.{name} (weight sha256s)")
    return out


def check_frozen(cfg: dict) -> None:
    """Workflow start (dry runs included): with lock.frozen in paper mode, any unpinned source stops the run."""
    if not frozen(cfg) or cfg.get("mode") != "paper":
        return
    miss = missing_pins(cfg)
    if miss:
        raise GrloError(f"lock.frozen is true but {miss[0]} is not pinned ({len(miss)} unpinned in all; "
                        "`grlo lock --check` lists them): run `grlo lock --config ...` with lock.frozen: false",
                        path=str(lock_path(cfg)))


# ---------------------------------------------------------------- grlo lock

def _lock_model(cfg: dict, name: str, src: dict, section: str = "models") -> None:
    from huggingface_hub import HfApi  # optional: huggingface_hub

    try:
        rev = revision(cfg, section, name, src) or HfApi().model_info(src["repo"]).sha
        info = HfApi().model_info(src["repo"], revision=rev, files_metadata=True)
    except Exception as e:  # noqa: BLE001 - hub errors become one line
        err = hub_error(e, src["repo"], None, f"{section}.{name}")
        if err is None:
            raise
        raise err from None
    files = {s.rfilename: s.lfs.sha256 for s in info.siblings or [] if getattr(s, "lfs", None) is not None}
    record(cfg, section, name, src, rev, files)


def _lock_dataset(cfg: dict, name: str, src: dict) -> None:
    """A dataset lm-eval loads itself: its commit (the content of a hub commit never changes)."""
    from huggingface_hub import HfApi  # optional: huggingface_hub

    try:
        rev = revision(cfg, "datasets", name, src) or HfApi().dataset_info(src["repo"]).sha
    except Exception as e:  # noqa: BLE001 - hub errors become one line
        err = hub_error(e, src["repo"], None, f"datasets.{name}", repo_type="dataset")
        if err is None:
            raise
        raise err from None
    record(cfg, "datasets", name, src, rev, {})


def _lock_benchmark(cfg: dict, name: str, src: dict, cache: Path) -> None:
    fetch_raw_files(cfg, name, src, cache)  # downloads, verifies what is pinned and records the rest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--only", nargs="*", default=None, help="source names to (re)lock; default every source the config uses")
    p.add_argument("--cache-dir", default="data/benchmarks/.cache", help="where dataset files are downloaded to hash them")
    p.add_argument("--check", action="store_true", help="list what is still unpinned (no network, writes nothing); "
                                                        "exit 1 when something is")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    if getattr(args, "check", False):
        miss = missing_pins(cfg)
        print(f"lock file {lock_path(cfg)}: {len(sources(cfg))} sources; "
              + (f"{len(miss)} unpinned:" if miss else "all pinned"))
        for m in miss:
            print(f"  {m}")
        return 1 if miss else 0
    if cfg.get("mode") != "paper":
        raise GrloError("grlo lock pins paper-mode hub sources; smoke sources are fixtures and wheels pinned in the "
                        "registry", field="mode")
    if frozen(cfg):
        raise GrloError("lock.frozen is true: set it to false to write the lock file", field="lock.frozen")
    for section, name, src in sources(cfg):
        if args.only is not None and name not in args.only:
            continue
        if section in ("models", "judges"):
            _lock_model(cfg, name, src, section)
        elif section == "datasets":
            _lock_dataset(cfg, name, src)
        else:
            _lock_benchmark(cfg, name, src, Path(args.cache_dir))
    miss = missing_pins(cfg)
    print(f"lock file {lock_path(cfg)}: {len(sources(cfg))} sources"
          + (f"; still unpinned: {', '.join(miss)}" if miss else ", all pinned"))
    return 0
