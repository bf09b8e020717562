"""verl's per-step metrics -> our metrics.jsonl schema (the native engine's row names), so figures and tables work
unchanged.

Inputs, one pair per launch attempt (a resumed run is a new attempt), under <output-dir>/verl/logs/:
  attempt-N.metrics.jsonl  verl's file logger (`trainer.logger` has "file"; VERL_FILE_LOGGER_PATH): {"step", "data"}
  attempt-N.reward.jsonl   our style_mix manager: one row per call, split train|val, per-component means
A later attempt replaces the training steps it repeats (verl resumes from its last checkpoint); the validation it
runs first at the resumed step adds to that step's row. The i-th training call of the
reward manager in an attempt belongs to the i-th training step of that attempt, the i-th validation call to its i-th
validation row (verl validates before training and every test_freq steps, logging both in step order).

Names: metrics with the same meaning get the native name (RENAME); every other numeric verl metric is kept under
its own name (e.g. critic/advantages/mean is verl's post-whitening mean, not the native raw mean).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import write_jsonl


RENAME = {
    "critic/score/mean": "reward/score_mean",
    "critic/values/mean": "critic/values_mean",
    "critic/returns/mean": "critic/returns_mean",
    "critic/vf_explained_var": "critic/explained_variance",
    "timing_s/gen": "time/generate",
    "timing_s/reward": "time/reward",
    "timing_s/update_critic": "time/update_critic",
    "timing_s/update_actor": "time/update_actor",
    "timing_s/step": "time/step",
    "timing_s/testing": "time/validation",
    "timing_s/save_checkpoint": "time/save_checkpoint",
    "perf/total_num_tokens": "perf/total_tokens",
    "perf/max_memory_allocated_gb": "gpu/max_memory_allocated_gb",
    "perf/max_memory_reserved_gb": "gpu/max_memory_reserved_gb",
    "training/epoch": "epoch",
}
# native time/values_logprobs = verl's two no-grad passes
SUMS = {"time/values_logprobs": ("timing_s/old_log_prob", "timing_s/values")}
_ATTEMPT = re.compile(r"attempt-(\d+)\.metrics\.jsonl$")


def attempts(log_dir: str | Path) -> list[int]:
    d = Path(log_dir)
    return sorted(int(m[1]) for p in (d.glob("attempt-*.metrics.jsonl") if d.is_dir() else [])
                  if (m := _ATTEMPT.search(p.name)))


def next_attempt(log_dir: str | Path) -> int:
    a = attempts(log_dir)
    return (a[-1] + 1) if a else 1


def attempt_paths(log_dir: str | Path, n: int) -> tuple[Path, Path]:
    d = Path(log_dir)
    return d / f"attempt-{n}.metrics.jsonl", d / f"attempt-{n}.reward.jsonl"


def is_training(data: dict) -> bool:
    return "training/global_step" in data


def is_validation(data: dict) -> bool:
    return any(k.startswith("val-") for k in data)


def convert_row(step: int, data: dict, batches_per_epoch: int | None = None) -> dict:
    row: dict = {"step": int(step)}
    for k, v in data.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or k == "training/global_step":
            continue
        row[RENAME.get(k, k)] = float(v) if k != "training/epoch" else int(v)
    for name, parts in SUMS.items():
        if any(p in data for p in parts):
            row[name] = float(sum(data.get(p, 0.0) for p in parts))
    if "perf/total_tokens" in row and row.get("time/step"):
        row["perf/tokens_per_s"] = row["perf/total_tokens"] / row["time/step"]
    if batches_per_epoch and is_training(data):
        row["batch_in_epoch"] = (int(step) - 1) % batches_per_epoch
        # from the step: verl 0.6.1's training/epoch restarts at 0 after a resume (its epoch loop does)
        row["epoch"] = (int(step) - 1) // batches_per_epoch
    return row


def merge_attempt(verl_rows: list[dict], reward_rows: list[dict], batches_per_epoch: int | None = None) -> dict[int, dict]:
    train_calls = [r for r in reward_rows if r.get("split") == "train"]
    val_calls = [r for r in reward_rows if r.get("split") == "val"]
    out: dict[int, dict] = {}
    ti = vi = 0
    for rec in verl_rows:
        step, data = int(rec["step"]), rec.get("data") or {}
        row = convert_row(step, data, batches_per_epoch)
        if is_validation(data) and vi < len(val_calls):
            row.update({f"val/{k}": v for k, v in val_calls[vi].items() if k.startswith("reward/")})
            vi += 1
        if is_training(data) and ti < len(train_calls):
            row.update({k: v for k, v in train_calls[ti].items() if k.startswith("reward/")})
            ti += 1
        out.setdefault(step, {}).update(row)
    return out


def read_log(path: Path) -> list[dict]:
    """A log's rows; an unterminated last line (the writer was killed mid-row) is dropped, any other bad line is an
    error naming file and line."""
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]  # the partial row of an interrupted write
    rows = []
    for lineno, line in enumerate(raw.decode("utf-8", errors="strict").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise GrloError(f"malformed JSON ({e.msg})", path=str(path), field=f"line {lineno}") from None
    return rows


def convert_logs(log_dir: str | Path, batches_per_epoch: int | None = None) -> list[dict]:
    """All attempts merged: one row per step (step 0 = validation before training), sorted by step."""
    rows: dict[int, dict] = {}
    for n in attempts(log_dir):
        mpath, rpath = attempt_paths(log_dir, n)
        verl_rows = read_log(mpath)
        reward_rows = read_log(rpath) if rpath.exists() else []
        for step, row in merge_attempt(verl_rows, reward_rows, batches_per_epoch).items():
            old = rows.get(step, {})
            if "epoch" in row:  # a repeated training step replaces the earlier attempt's (its validation stays)
                rows[step] = {**{k: v for k, v in old.items() if k.startswith("val")}, **row}
            else:  # a validation-only row (a resumed run validates first) adds to the step's row
                rows[step] = {**old, **row}
    return [rows[s] for s in sorted(rows)]


def write_metrics(log_dir: str | Path, out_path: str | Path, batches_per_epoch: int | None = None) -> int:
    rows = convert_logs(log_dir, batches_per_epoch)
    return write_jsonl(str(out_path), rows)
