"""The lock file: hub revisions and file sha256s the registries leave unpinned, read and recorded by every fetch.

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
and `check_frozen` stops a workflow run (dry run included) before any job starts. The `grlo lock` command and
`check_frozen` (which sources a config uses) are grlo/lock_sources.py; this module is the file alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path

import yaml

from grlo import config as C
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


def stale(e: dict, src: dict) -> bool:
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
    if stale(e, src):
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
        old = sec.get(name) if sec.get(name) and not stale(sec[name], {**src, "revision": rev}) else {}
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
