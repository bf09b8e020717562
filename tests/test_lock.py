"""The source lock: registry pins else the lock file; recorded at first fetch, enforced with lock.frozen; hub errors as
one line; a frozen paper dry run with a missing pin stops with one line."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grlo import config as C
from grlo import lock, lock_sources
from grlo.errors import GrloError

ROOT = Path(__file__).resolve().parent.parent


def paper_cfg(tmp_path, frozen=False):
    cfg = C.load([ROOT / "config/config.yaml"])
    cfg["lock"] = {"frozen": frozen, "path": str(tmp_path / "lock.yaml")}
    return cfg


def test_registry_pins_the_evalplus_releases_and_amc23_parquet():
    from grlo import registry

    he = registry.benchmark("humaneval_plus")["source"]["paper"]
    assert he["url"] == "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz"
    assert he["sha256"] == "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101" and he["count"] == 164
    mb = registry.benchmark("mbpp_plus")["source"]["paper"]
    assert mb["url"].endswith("/v0.2.0/MbppPlus.jsonl.gz") and mb["count"] == 378
    assert mb["sha256"] == "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63"
    amc = registry.benchmark("amc23")["source"]["paper"]
    assert amc["file"] == "test-00000-of-00001.parquet" and amc["revision"]


def test_every_paper_source_is_pinned_by_registry_or_lock(tmp_path):
    cfg = paper_cfg(tmp_path)
    names = {n for _, n, _ in lock_sources.sources(cfg)}
    assert {"qwen3-4b-base", "skywork-reward-v2-llama-3.1-8b", "qwen3-4b", "math500", "humaneval_plus"} <= names
    missing = lock_sources.missing_pins(cfg)
    assert "models.general-reasoner-qwen3-4b (revision)" in missing and "models.qwen3-4b-base (revision)" not in missing
    assert not any(m.startswith(("benchmarks.humaneval_plus", "benchmarks.mbpp_plus")) for m in missing)  # registry-pinned


def test_frozen_lock_refuses_an_unpinned_source_with_one_line(tmp_path):
    cfg = paper_cfg(tmp_path, frozen=True)
    with pytest.raises(GrloError) as e:
        lock_sources.check_frozen(cfg)
    assert "\n" not in str(e.value) and "grlo lock" in str(e.value)
    assert "models.qwen3-4b-base (weight sha256s)" in str(e.value)  # revision pinned, weights not yet
    src = {"kind": "hub", "repo": "Qwen/Qwen3-4B-Base", "revision": None}
    with pytest.raises(GrloError, match="pinned neither in the registry nor in the lock file"):
        lock.revision(cfg, "models", "qwen3-4b-base", src)
    smoke = C.load([ROOT / "config/config.yaml", ROOT / "config/smoke.yaml"])
    smoke["lock"] = cfg["lock"]
    lock_sources.check_frozen(smoke)  # smoke sources are fixtures and pinned wheels


def test_record_then_enforce_and_detect_a_changed_source(tmp_path):
    cfg = paper_cfg(tmp_path)
    src = {"kind": "hub_dataset", "repo": "org/data", "revision": None, "file": "t.jsonl", "sha256": None}
    assert lock.revision(cfg, "benchmarks", "b", src) is None  # not frozen: resolve now
    lock.record(cfg, "benchmarks", "b", src, "c0ffee", {"t.jsonl": "a" * 64})
    assert lock.revision(cfg, "benchmarks", "b", src) == "c0ffee"
    assert lock.expected_sha256(cfg, "benchmarks", "b", src, "t.jsonl", None) == "a" * 64
    assert lock.expected_sha256(cfg, "benchmarks", "b", src, "t.jsonl", "b" * 64) == "b" * 64  # registry wins
    data = yaml.safe_load((tmp_path / "lock.yaml").read_text())
    assert data["benchmarks"]["b"] == {"repo": "org/data", "revision": "c0ffee", "files": {"t.jsonl": "a" * 64}}
    frozen = paper_cfg(tmp_path, frozen=True)
    moved = {**src, "repo": "other/data"}
    with pytest.raises(GrloError, match="differs from the locked"):
        lock.revision(frozen, "benchmarks", "b", moved)
    lock.record(frozen, "benchmarks", "b", src, "beef", {})  # frozen: nothing is written
    assert yaml.safe_load((tmp_path / "lock.yaml").read_text())["benchmarks"]["b"]["revision"] == "c0ffee"


def test_url_download_records_verifies_and_names_the_url_on_mismatch(tmp_path, monkeypatch):
    from grlo import download
    from grlo.data import benchmarks

    payload = tmp_path / "src.jsonl.gz"
    with gzip.open(payload, "wt") as f:
        f.write(json.dumps({"task_id": "X/0", "prompt": "def f():\n", "entry_point": "f"}) + "\n")

    def fake_fetch(url, dest, sha256, timeout=120.0, key=None):
        shutil.copy(payload, dest)
        return download.verify_source_sha256(dest, sha256, url, key or "sha256")

    monkeypatch.setattr(download, "fetch_url", fake_fetch)
    cfg = paper_cfg(tmp_path)
    src = {"kind": "url", "url": "https://example.org/rel/X.jsonl.gz", "sha256": None}
    paths, prov = benchmarks.fetch_raw_files(cfg, "xb", src, tmp_path / "cache")
    sha = prov["sha256"]
    assert yaml.safe_load((tmp_path / "lock.yaml").read_text())["benchmarks"]["xb"]["files"] == {"X.jsonl.gz": sha}
    with gzip.open(payload, "wt") as f:  # the release asset changes upstream
        f.write("{}\n")
    paths[0].unlink()
    with pytest.raises(GrloError) as e:
        benchmarks.fetch_raw_files(paper_cfg(tmp_path, frozen=True), "xb", src, tmp_path / "cache")
    msg = str(e.value)
    assert "https://example.org/rel/X.jsonl.gz" in msg and "benchmarks.xb.files" in msg and str(tmp_path / "cache") not in msg


@pytest.mark.parametrize("exc, expect", [
    ("EntryNotFoundError", "does not exist at this revision"),
    ("LocalEntryNotFoundError", "hub is unreachable"),
    ("RepositoryNotFoundError", "repository not found"),
    ("ConnectionError", "network error"),
])
def test_hub_errors_are_one_line_naming_source_and_file(monkeypatch, exc, expect):
    import huggingface_hub
    from huggingface_hub import errors as E

    from grlo.data import benchmarks
    from grlo.registry import spec as spec_mod

    class Response:
        headers: dict = {}
        status_code = 404
        request = None

    def fail(*a, **k):
        if exc == "ConnectionError":
            raise ConnectionError("connection refused")
        cls = getattr(E, exc)
        raise cls("x", response=Response()) if exc == "RepositoryNotFoundError" else cls("x")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    spec = spec_mod.benchmark_spec("amc23", {"mode": "paper"})
    with pytest.raises(GrloError) as e:
        benchmarks.fetch_raw(spec)
    msg = str(e.value)
    assert "\n" not in msg and expect in msg and "math-ai/amc23" in msg and "amc23.source.paper" in msg
    if exc != "RepositoryNotFoundError":
        assert "test-00000-of-00001.parquet" in msg


def test_frozen_paper_dry_run_with_a_missing_pin_stops_with_one_line(tmp_path):
    over = tmp_path / "frozen.yaml"
    over.write_text(yaml.safe_dump({"lock": {"frozen": True, "path": str(tmp_path / "empty.lock.yaml")}}))
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    r = subprocess.run([exe, "-n", "--cores", "1", "--nolock", "--configfile", "config/config.yaml", str(over),
                        "--config", f"outdir={tmp_path}/out"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0
    lines = [x for x in (r.stdout + r.stderr).splitlines() if "lock.frozen" in x]
    assert len(lines) == 1 and "not pinned" in lines[0] and "grlo lock" in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_fetch_model_pins_records_and_verifies_weights(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors as E

    from grlo.models import fetch

    src = {"kind": "hub", "repo": "Qwen/Qwen3-4B-Base", "revision": None}
    calls = []

    class Info:
        sha = "1" * 40

    def snapshot(repo_id, revision, local_dir, allow_patterns):
        calls.append((repo_id, revision))
        Path(local_dir, "config.json").write_text("{}")
        Path(local_dir, "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo, **kw: Info())
    cfg = paper_cfg(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "s").mkdir()
    got = fetch.materialise_hub(src, tmp_path / "a", tmp_path / "s", cfg, "qwen3-4b-base")
    assert got["revision"] == "1" * 40 and calls == [("Qwen/Qwen3-4B-Base", "1" * 40)]
    locked = yaml.safe_load((tmp_path / "lock.yaml").read_text())["models"]["qwen3-4b-base"]
    assert locked["revision"] == "1" * 40 and len(locked["files"]["model.safetensors"]) == 64
    # frozen: the locked revision is fetched; changed weights are refused with the source and the lock key
    def changed(repo_id, revision, local_dir, allow_patterns):
        calls.append((repo_id, revision))
        Path(local_dir, "model.safetensors").write_bytes(b"other weights")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", changed)
    (tmp_path / "b").mkdir()
    (tmp_path / "s2").mkdir()
    with pytest.raises(GrloError) as e:
        fetch.materialise_hub(src, tmp_path / "b", tmp_path / "s2", paper_cfg(tmp_path, frozen=True), "qwen3-4b-base")
    assert "Qwen/Qwen3-4B-Base@" + "1" * 40 in str(e.value) and "models.qwen3-4b-base.files.model.safetensors" in str(e.value)

    class Response:
        headers: dict = {}
        status_code = 403
        request = None

    def gated(**kw):
        raise E.GatedRepoError("gated", response=Response())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)
    with pytest.raises(GrloError, match="meta-llama/Llama-3.2-3B: the repository is gated.*HF_TOKEN"):
        fetch.materialise_hub({"kind": "hub", "repo": "meta-llama/Llama-3.2-3B", "revision": "2" * 40},
                              tmp_path / "b", tmp_path / "s2", paper_cfg(tmp_path), "llama-3.2-3b")


def test_a_registry_revision_bump_makes_the_locked_shas_stale(tmp_path):
    cfg = paper_cfg(tmp_path)
    src = {"kind": "hub", "repo": "org/m", "revision": "1" * 40}
    lock.record(cfg, "models", "m", src, "1" * 40, {"model.safetensors": "a" * 64})
    assert lock.entry(cfg, "models", "m", src)["files"] == {"model.safetensors": "a" * 64}
    bumped = {**src, "revision": "2" * 40}
    assert lock.entry(cfg, "models", "m", bumped) is None  # not frozen: re-recorded at the next fetch
    with pytest.raises(GrloError, match="differs from the locked org/m@1111"):
        lock.entry(paper_cfg(tmp_path, frozen=True), "models", "m", bumped)
    lock.record(cfg, "models", "m", bumped, "2" * 40, {"model.safetensors": "b" * 64})
    assert lock.entry(cfg, "models", "m", bumped) == {"repo": "org/m", "revision": "2" * 40,
                                                      "files": {"model.safetensors": "b" * 64}}


def _full_lock(cfg) -> dict:
    """A lock that pins every source the paper config fetches (fake values)."""
    data = {}
    for section, name, src in lock_sources.sources(cfg):
        e = {"url": src["url"]} if src.get("kind") == "url" else {"repo": src["repo"], "revision": src.get("revision") or "f" * 40}
        if section in ("benchmarks",):
            e["files"] = {f: "e" * 64 for f in lock_sources._files(src)}
        elif section in ("models", "judges"):
            e["files"] = {"model.safetensors": "e" * 64}
        data.setdefault(section, {})[name] = e
    return data


# One of each kind of fetch the issue named (support file, lm-eval dataset, served judge, weight sha256s) and a
# benchmark file: (how to break the full lock, the name the one-line error must carry).
DROPS = {
    "df_gamed.csv": (lambda d: d["benchmarks"]["alpacaeval2"]["files"].pop("df_gamed.csv"),
                     "benchmarks.alpacaeval2 (sha256 of df_gamed.csv)"),
    "lm-eval MATH": (lambda d: d["datasets"].pop("lmeval-math"), "datasets.lmeval-math (revision)"),
    "judge": (lambda d: d["judges"].pop("alpacaeval-judge"), "judges.alpacaeval-judge (revision)"),
    "weights": (lambda d: d["models"]["qwen3-4b-base"].pop("files"), "models.qwen3-4b-base (weight sha256s)"),
    "lcb file": (lambda d: d["benchmarks"]["livecodebench"]["files"].pop("test3.jsonl"),
                 "benchmarks.livecodebench (sha256 of test3.jsonl)"),
}


@pytest.mark.parametrize("what", sorted(DROPS))
def test_frozen_lock_missing_any_one_fetch_stops_naming_it(tmp_path, what):
    cfg = paper_cfg(tmp_path, frozen=True)
    names = {(s, n) for s, n, _ in lock_sources.sources(cfg)}
    assert {("judges", "alpacaeval-judge"), ("datasets", "lmeval-gsm8k"), ("datasets", "lmeval-math")} <= names
    full = _full_lock(cfg)
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(full))
    lock_sources.check_frozen(cfg)  # everything pinned: the run may start
    assert lock_sources.missing_pins(cfg) == []
    drop, name = DROPS[what]
    drop(full)
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(full))
    with pytest.raises(GrloError) as e:
        lock_sources.check_frozen(cfg)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_lock_check_lists_what_is_unpinned(tmp_path, capsys):
    import argparse

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"lock": {"frozen": False, "path": str(tmp_path / "lock.yaml")}}))
    args = argparse.Namespace(config=[str(ROOT / "config/config.yaml"), str(cfg_file)], only=None, cache_dir=None, check=True)
    assert lock_sources.run(args) == 1
    out = capsys.readouterr().out
    assert "benchmarks.alpacaeval2 (sha256 of df_gamed.csv)" in out and "datasets.lmeval-math (revision)" in out
    assert "benchmarks.math500" not in out  # pinned by the registry (public pins)
    full = _full_lock(C.load([ROOT / "config/config.yaml", cfg_file]))
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(full))
    assert lock_sources.run(args) == 0 and "all pinned" in capsys.readouterr().out


def test_frozen_paper_dry_run_with_a_lock_missing_df_gamed_stops_naming_it(tmp_path):
    lock_file = tmp_path / "lock.yaml"
    over = tmp_path / "frozen.yaml"
    over.write_text(yaml.safe_dump({"lock": {"frozen": True, "path": str(lock_file)}}))
    full = _full_lock(C.load([ROOT / "config/config.yaml", over]))
    full["benchmarks"]["alpacaeval2"]["files"].pop("df_gamed.csv")
    lock_file.write_text(yaml.safe_dump(full))
    exe = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    r = subprocess.run([exe, "-n", "--cores", "1", "--nolock", "--configfile", "config/config.yaml", str(over),
                        "--config", f"outdir={tmp_path}/out"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0
    lines = [x for x in (r.stdout + r.stderr).splitlines() if "lock.frozen" in x]
    assert len(lines) == 1 and "benchmarks.alpacaeval2 (sha256 of df_gamed.csv)" in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
