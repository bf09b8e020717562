"""`grlo lock`: pin every hub source the registries leave unpinned (a lock file), then enforce it.

The registries pin what a public source publishes (a commit revision, a file sha256). Everything else is pinned by
the lock file (config `lock.path`, default `config/lock.yaml`), one entry per source:

    models:     {NAME: {repo, revision, files: {FILE: sha256}}}      (weight files: their LFS sha256)
    judges:     {alpacaeval-judge: {repo, revision, files: {...}}}  (a hub-id AlpacaEval judge served by vLLM)
    benchmarks: {NAME: {repo, revision, files: {FILE: sha256}}  or  {url, files: {FILE: sha256}}}
                (support files a grader reads, e.g. alpaca-eval's df_gamed.csv, are files of their benchmark)
    datasets:   {lmeval-gsm8k | lmeval-math: {repo, revision}}      (lm-eval's own few-shot datasets)

`grlo lock` resolves every source the config uses (the hub's current commit; a dataset file's sha256 by downloading
it, a model's weight sha256s from the hub's LFS metadata) and writes the file. `grlo fetch-model` and
`grlo download-benchmark` read it: the locked revision is fetched and every locked sha256 is verified; what is
missing is resolved and recorded at first fetch. With `lock.frozen: true` nothing is recorded: an unpinned source
(neither registry nor lock) or a changed one (another repo/url than locked, another sha256) is refused with one line,
and `check_frozen` stops a workflow run (dry run included) before any job starts.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
from pathlib import Path

import yaml

from grlo import config as C
from grlo import registry
from grlo.errors import GrloError
from grlo.io import write_text

log = logging.getLogger(__name__)

DEFAULT_PATH = "config/lock.yaml"
HEADER = ("# Source lock (grlo/lock.py): hub revisions and file sha256s the registries do not pin. Written by\n"
          "# `grlo lock` and at first fetch; with config `lock.frozen: true` every fetch must match it.\n")


def lock_path(cfg: dict) -> Path | None:
    """The lock file of a loaded config (None for a bare {"mode": ...} dict: library calls without a config
    neither read nor write a lock)."""
    if "lock" not in cfg:
        return None
    p = Path(C.get(cfg, "lock.path") or DEFAULT_PATH)
    return p if p.is_absolute() else C.REPO_ROOT / p


def frozen(cfg: dict) -> bool:
    return bool(C.get(cfg, "lock.frozen", False))


def read(cfg: dict) -> dict:
    p = lock_path(cfg)
    if p is None or not p.is_file():
        return {}
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise GrloError(f"cannot parse the lock file ({str(e).splitlines()[0]}): fix or delete it and run `grlo lock`",
                        path=str(p)) from None
    if not isinstance(data, dict):
        raise GrloError("the lock file must be a mapping (models:, benchmarks:)", path=str(p))
    return data


@contextlib.contextmanager
def _exclusive(cfg: dict):
    """Read-modify-write under an advisory lock: parallel fetch jobs record their entries one at a time."""
    p = lock_path(cfg)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".flock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            data = read(cfg)
            yield data
            write_text(p, HEADER + yaml.safe_dump(data, sort_keys=True, width=120))
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _origin(src: dict) -> dict:
    return {"url": src["url"]} if src.get("kind") == "url" else {"repo": src["repo"]}


def _stale(e: dict, src: dict) -> bool:
    """A lock entry for another repo/url, or for another revision than the registry now pins."""
    if any(e.get(k) != v for k, v in _origin(src).items()):
        return True
    return bool(src.get("revision") and e.get("revision") and e["revision"] != src["revision"])


def entry(cfg: dict, section: str, name: str, src: dict) -> dict | None:
    """The lock entry of a source, or None. An entry for another repo/url than the registry's is a changed source:
    refused when frozen, ignored (and later overwritten) otherwise."""
    e = (read(cfg).get(section) or {}).get(name)
    if not e:
        return None
    if _stale(e, src):
        if frozen(cfg):
            raise GrloError(f"{section[:-1]} {name}: the registry source {_origin(src)}@{src.get('revision')} differs "
                            f"from the locked {e.get('repo') or e.get('url')}@{e.get('revision')}: run `grlo lock` "
                            "with lock.frozen: false to re-pin it", path=str(lock_path(cfg)), field=f"{section}.{name}")
        return None
    return e


def revision(cfg: dict, section: str, name: str, src: dict) -> str | None:
    """The revision to fetch: the registry's pin, else the locked one, else None (resolve now; refused when frozen)."""
    if src.get("revision"):
        return src["revision"]
    e = entry(cfg, section, name, src)
    if e and e.get("revision"):
        return e["revision"]
    if frozen(cfg):
        raise _unpinned(cfg, section, name, src)
    return None


def expected_sha256(cfg: dict, section: str, name: str, src: dict, file: str, registry_sha: str | None) -> str | None:
    """The sha256 a fetched file must have: the registry's, else the locked one; None = record it (refused when frozen)."""
    if registry_sha:
        return registry_sha
    e = entry(cfg, section, name, src)
    sha = ((e or {}).get("files") or {}).get(file)
    if sha is None and frozen(cfg):
        raise _unpinned(cfg, section, name, src, file)
    return sha


def record(cfg: dict, section: str, name: str, src: dict, rev: str | None, files: dict[str, str]) -> None:
    """Record what a fetch resolved (never when frozen: then everything was verified against the lock)."""
    if frozen(cfg) or C.get(cfg, "mode") != "paper" or lock_path(cfg) is None:
        return
    with _exclusive(cfg) as data:
        sec = data.setdefault(section, {})
        old = sec.get(name) if sec.get(name) and not _stale(sec[name], {**src, "revision": rev}) else {}
        new = {**_origin(src), "files": {**(old.get("files") or {}), **files}}
        if src.get("kind") != "url":
            new["revision"] = rev
        sec[name] = new
    log.info("lock: %s %s pinned at %s (%d file sha256) in %s", section[:-1], name, rev, len(files), lock_path(cfg))


def _unpinned(cfg: dict, section: str, name: str, src: dict, file: str | None = None) -> GrloError:
    what = (f"file {file} of " if file else "") + f"{section[:-1]} {name} ({_origin(src).popitem()[1]})"
    return GrloError(f"lock.frozen is true but {what} is pinned neither in the registry nor in the lock file: "
                     "run `grlo lock --config ...` once with lock.frozen: false", path=str(lock_path(cfg)),
                     field=f"{section}.{name}")


# ---------------------------------------------------------------- which sources a config uses

def used_models(cfg: dict) -> list[str]:
    from grlo.workflow import split_model_id

    names = [cfg["backbones"]["primary"], *(cfg["backbones"].get("extra") or []), cfg.get("reward_model")]
    names += [split_model_id(m)[0] for m in C.get(cfg, "evaluation.released") or []]
    if C.get(cfg, "rlvr.mode") == "checkpoint":
        names.append(C.get(cfg, "rlvr.checkpoint.model"))
    if C.get(cfg, "rlvr.reward.verifier") == "general-verifier":
        names.append("general-verifier")
    return list(dict.fromkeys(n for n in names if n))


def judge_source(cfg: dict) -> tuple[str, str, dict] | None:
    """The AlpacaEval judge as a hub source when the run judges with a model served from a hub id (not a local dir)."""
    import os

    if not any(registry.benchmark(b).get("scorer") == "alpacaeval" for b in C.get(cfg, "evaluation.benchmarks") or []):
        return None
    from grlo.eval.scorers.alpacaeval import judge_settings

    judge = judge_settings(cfg)
    path = str((judge.get("serve") or {}).get("model_path") or "")
    if judge.get("kind") != "openai" or not path or os.path.isabs(path) or path.startswith(".") or Path(path).exists():
        return None
    return ("judges", "alpacaeval-judge", {"kind": "hub", "repo": path, "revision": judge.get("revision")})


def lmeval_sources(cfg: dict) -> list[tuple[str, str, dict]]:
    """lm-eval's own datasets for the base model's few-shot check (paper mode; grlo.eval.lmeval)."""
    if C.get(cfg, "mode") != "paper":
        return []
    from grlo.eval.lmeval import LMEVAL_DATASETS

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
        if e and _stale(e, src):
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
    from huggingface_hub import HfApi

    from grlo.data.download import hub_error

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
    from huggingface_hub import HfApi

    from grlo.data.download import hub_error

    try:
        rev = revision(cfg, "datasets", name, src) or HfApi().dataset_info(src["repo"]).sha
    except Exception as e:  # noqa: BLE001 - hub errors become one line
        err = hub_error(e, src["repo"], None, f"datasets.{name}", repo_type="dataset")
        if err is None:
            raise
        raise err from None
    record(cfg, "datasets", name, src, rev, {})


def _lock_benchmark(cfg: dict, name: str, src: dict, cache: Path) -> None:
    from grlo.data.benchmarks import fetch_raw_files

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
