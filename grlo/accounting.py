"""Measured compute: which devices a job really used, and GPU-hours aggregated from Snakemake benchmark TSVs.

`record_device(path, gpus_requested)` is called by every heavy command (`--device-record PATH`); it writes, beside the
rule's `benchmark:` TSV, the GPUs the job could use (NVML, else torch.cuda) and the count charged:
min(visible GPUs, GPUs requested), because a single-process job on an 8-GPU box that asked for one GPU uses one.
A CPU job (requested 0 or none visible) is charged 0 GPUs and its CPU time is reported as CPU-hours instead.

`grlo gpu-hours` (grlo/report/gpu_hours.py) reads every `benchmarks/{rule}/{wildcards}.tsv` with its `.device.json` and writes per-job and per
(stage, model) totals. GPU-hours = wall seconds x GPUs used / 3600 (Snakemake's TSV has no GPU columns).
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grlo.errors import GrloError
from grlo.io import atomic_path, open_input, read_json, write_json

TSV_COLUMNS = ["s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out", "mean_load", "cpu_time"]
STAGES = ("grlo", "rlvr", "grlo-rlvr")


# ---------------------------------------------------------------------------------------------------------------- device
def _visible_filter(n_physical: int, uuids: list[str]) -> list[int]:
    """Indices of the physical GPUs this process may use, honouring CUDA_VISIBLE_DEVICES (indices or UUIDs)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(n_physical))
    chosen = []
    for tok in (t.strip() for t in env.split(",")):
        if not tok:
            continue
        if tok.lstrip("-").isdigit():
            i = int(tok)
            if i < 0:  # CUDA stops at the first invalid entry
                break
            if i < n_physical:
                chosen.append(i)
        else:
            match = [i for i, u in enumerate(uuids) if u and (u == tok or u.startswith(tok) or tok in u)]
            if match:
                chosen.append(match[0])
    return chosen


def _nvml_gpus() -> list[dict] | None:
    try:
        import pynvml  # optional: pynvml (nvidia-ml-py)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: NVML raises its own error types
        return None
    try:
        n = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]

        def _s(x: Any) -> str:
            return x.decode() if isinstance(x, bytes) else str(x)

        uuids = [_s(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
        driver = _s(pynvml.nvmlSystemGetDriverVersion())
        out = []
        for i in _visible_filter(n, uuids):
            h = handles[i]
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out.append({"index": i, "name": _s(pynvml.nvmlDeviceGetName(h)), "uuid": uuids[i],
                        "memory_mib": int(mem.total // (1 << 20)), "driver": driver})
        return out
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _torch_gpus() -> list[dict] | None:
    try:
        import torch  # heavy: torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": p.name, "uuid": str(getattr(p, "uuid", "")),
                    "memory_mib": int(p.total_memory // (1 << 20)), "driver": None})
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_devices(use_torch: bool = True) -> tuple[list[dict], str]:
    """(visible GPUs, how they were found): NVML first (cheap, exact names), then torch.cuda, else none."""
    gpus = _nvml_gpus()
    if gpus is not None:
        return gpus, "nvml"
    if use_torch:
        gpus = _torch_gpus()
        if gpus is not None:
            return gpus, "torch.cuda"
    return [], "none"


def gpu_model_of(names: list[str]) -> str | None:
    uniq = sorted(set(names))
    if not uniq:
        return None
    return uniq[0] if len(uniq) == 1 else "mixed: " + " + ".join(uniq)


def record_device(path: str | os.PathLike | None, gpus_requested: int, *, use_torch: bool = True) -> dict:
    """Describe the devices this job uses; write it as JSON at `path` (atomic) when given; return the record."""
    if gpus_requested is None or int(gpus_requested) < 0:
        raise GrloError(f"gpus_requested must be >= 0, got {gpus_requested!r}", field="gpus_requested")
    gpus_requested = int(gpus_requested)
    visible, source = probe_devices(use_torch=use_torch)
    used = min(len(visible), gpus_requested)
    charged = visible[:used]
    # a multi-node SLURM job runs this on its first node; the other nodes hold the same number of GPUs
    nodes = int(os.environ.get("SLURM_NNODES") or os.environ.get("SLURM_JOB_NUM_NODES") or 1)
    record = {
        "gpus_requested": gpus_requested,
        "gpus_visible": len(visible),
        "gpu_count": used * nodes,
        "gpus_per_node": used,
        "nodes": nodes,
        "gpu_model": gpu_model_of([g["name"] for g in charged]),
        "gpus": charged,
        "probe": source,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if gpus_requested > len(visible) and nodes == 1:
        record["warning"] = f"requested {gpus_requested} GPU(s) but {len(visible)} visible; charged {used}"
    if path:
        write_json(path, record)
    return record


# ------------------------------------------------------------------------------------------------------------- TSV parse
def read_benchmark_tsv(path: str | os.PathLike) -> list[dict]:
    """Rows of a Snakemake benchmark TSV as floats ('NA' or '-' -> None). Several rows = `repeat()` runs."""
    path = str(path)
    with open_input(path, "benchmark file", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or "s" not in header or "cpu_time" not in header:
            raise GrloError("not a Snakemake benchmark TSV (needs columns 's' and 'cpu_time')", path=path,
                            field="header")
        rows = []
        for lineno, raw in enumerate(reader, 2):
            if not raw:
                continue
            if len(raw) != len(header):
                raise GrloError(f"{len(raw)} fields, header has {len(header)}", path=path, field=f"line {lineno}")
            row: dict[str, Any] = {}
            for col, val in zip(header, raw):
                if col == "h:m:s":
                    row[col] = val
                    continue
                try:
                    row[col] = None if val in ("NA", "-", "") else float(val)
                except ValueError:
                    raise GrloError(f"column {col!r}: {val!r} is not a number", path=path,
                                    field=f"line {lineno}") from None
            rows.append(row)
    if not rows:
        raise GrloError("benchmark TSV has no data row", path=path)
    return rows


def stage_of(rule: str, wildcards: str) -> str:
    """Training stage (grlo | rlvr | grlo-rlvr) for training rules, else the rule name (e.g. generate, score)."""
    parts = [rule] + wildcards.split("/")
    if rule.startswith("train"):
        cands = [rule[len("train"):].strip("_-")] + parts[1:]
        for c in cands:
            c = c.replace("_", "-")
            if c in STAGES:
                return c
    return rule


@dataclass
class Job:
    rule: str
    wildcards: str
    stage: str
    model: str
    runs: int
    wall_s: float
    cpu_s: float
    gpus: int | None
    gpu_model: str | None
    gpu_hours: float | None
    cpu_hours: float
    tsv: str
    device_json: str | None


def device_json_for(tsv: Path) -> Path:
    return tsv.with_name(tsv.name[: -len(".tsv")] + ".device.json")


def job_from_tsv(tsv: Path, root: Path) -> Job:
    rel = tsv.relative_to(root)
    if len(rel.parts) < 2:
        raise GrloError("benchmark TSV must live under benchmarks/{rule}/", path=str(tsv))
    rule = rel.parts[0]
    wildcards = str(Path(*rel.parts[1:]))[: -len(".tsv")]
    rows = read_benchmark_tsv(tsv)
    wall = sum(r.get("s") or 0.0 for r in rows)
    cpu = sum(r.get("cpu_time") or 0.0 for r in rows)
    dev_path = device_json_for(tsv)
    gpus: int | None
    model: str | None
    if dev_path.exists():
        dev = read_json(dev_path)
        if "gpu_count" not in dev:
            raise GrloError("missing 'gpu_count'", path=str(dev_path), field="gpu_count")
        gpus, model = int(dev["gpu_count"]), dev.get("gpu_model")
        gpu_hours = wall * gpus / 3600.0
    else:  # unknown, never guessed: reported as missing
        gpus, model, gpu_hours = None, None, None
    first = wildcards.split("/")[0]
    # {model}/{bench} for eval rules; {backbone} (or {stage}/{backbone}) for training rules
    target = wildcards.split("/")[-1] if rule.startswith("train") else first
    return Job(rule=rule, wildcards=wildcards, stage=stage_of(rule, wildcards), model=target, runs=len(rows),
               wall_s=wall, cpu_s=cpu, gpus=gpus, gpu_model=model, gpu_hours=gpu_hours, cpu_hours=cpu / 3600.0,
               tsv=str(tsv), device_json=str(dev_path) if dev_path.exists() else None)


def collect_jobs(benchmarks_dir: str | os.PathLike) -> list[Job]:
    root = Path(benchmarks_dir)
    if not root.is_dir():
        return []
    jobs = []
    for tsv in sorted(root.rglob("*.tsv")):
        with open(tsv, encoding="utf-8") as f:
            head = f.readline().rstrip("\n").split("\t")
        if "s" not in head or "cpu_time" not in head:  # other TSVs (e.g. our own micro-benchmarks) are not jobs
            continue
        jobs.append(job_from_tsv(tsv, root))
    return jobs


def aggregate(jobs: list[Job]) -> list[dict]:
    """Totals per (stage, model). gpu_hours is None if any job of the group has no device record."""
    groups: dict[tuple[str, str], dict] = {}
    for j in jobs:
        g = groups.setdefault((j.stage, j.model), {
            "stage": j.stage, "model": j.model, "jobs": 0, "wall_hours": 0.0, "gpu_hours": 0.0, "cpu_hours": 0.0,
            "gpu_models": set(), "max_gpus": 0, "unrecorded_jobs": 0})
        g["jobs"] += 1
        g["wall_hours"] += j.wall_s / 3600.0
        g["cpu_hours"] += j.cpu_hours
        if j.gpu_hours is None:
            g["unrecorded_jobs"] += 1
        else:
            g["gpu_hours"] += j.gpu_hours
            g["max_gpus"] = max(g["max_gpus"], j.gpus or 0)
            if j.gpu_model:
                g["gpu_models"].add(j.gpu_model)
    out = []
    for g in groups.values():
        g["gpu_model"] = " + ".join(sorted(g.pop("gpu_models"))) or ("none (CPU)" if not g["unrecorded_jobs"] else "")
        if g["unrecorded_jobs"] == g["jobs"]:
            g["gpu_hours"] = None
        out.append(g)
    return sorted(out, key=lambda g: (g["stage"], g["model"]))


def stage_gpu_hours(jobs: list[Job], stage: str, model: str) -> dict | None:
    """The aggregate row of one (stage, model), or None when that job never ran."""
    for g in aggregate([j for j in jobs if j.stage == stage and j.model == model]):
        return g
    return None


# ------------------------------------------------------------------------------------------------------------------ CLI
AGG_COLUMNS = ["stage", "model", "jobs", "wall_hours", "gpu_hours", "cpu_hours", "max_gpus", "gpu_model",
               "unrecorded_jobs"]
JOB_COLUMNS = ["rule", "wildcards", "stage", "model", "runs", "wall_s", "cpu_s", "gpus", "gpu_model", "gpu_hours",
               "cpu_hours", "tsv", "device_json"]


def fmt_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_csv(path: str | os.PathLike, columns: list[str], rows: list[dict], header: list[str] | None = None) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        for line in header or []:
            f.write(f"# {line}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([fmt_cell(r.get(c)) for c in columns])
