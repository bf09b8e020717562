"""The prepared prompts in verl's RL dataset schema (parquet, as verl 0.6.1's RLHFDataset reads), and our validation
file.

Row schema (the official train.jsonl's, which is verl's): `prompt` (chat list of {role, content}), `data_source`,
`ability`, `reward_model` {style: "model", ground_truth: ""}, `extra_info` {split, index, prompt_tokens}.
`index` is the row's position in the prepared file, so every verl row maps back to its prompt.

Validation file (train.sh's `val_files` is not released; ours, inferred): verl 0.6.1 validates with rule-based
rewards only (`RayPPOTrainer._validate` returns nothing for `reward_model.style == "model"` rows, and
`val_before_train` then stops the run), so the validation rows must carry a ground truth. The official prompt rows'
`data_source` is the placeholder "lighteval/MATH", a MATH set: we validate on the workflow's MATH-500 benchmark file
(`grlo.verl.val_benchmark`), rows `{data_source: "HuggingFaceH4/MATH-500", reward_model: {style: rule, ground_truth:
answer}}`, scored by verl's own rule scorer (`verl.utils.reward_score.default_compute_score`, MATH answer matching),
greedy, before training and every `test_freq` steps, as train.sh sets them.
"""

from __future__ import annotations

from pathlib import Path

from grlo.errors import GrloError
from grlo.io import atomic_path, iter_jsonl

DATA_SOURCE = "grlo"  # the official rows say "lighteval/MATH" (a placeholder); a prepared row's own value is kept


def verl_row(row: dict, index: int, split: str, path: str = "prompts", lineno: int | None = None) -> dict:
    chat = row.get("prompt")
    if not isinstance(chat, list) or not chat or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                         and isinstance(m.get("role"), str) for m in chat):
        raise GrloError("`prompt` must be a non-empty chat list of {role, content} strings", path=path,
                        field=f"line {lineno if lineno is not None else index + 1}")
    extra = row.get("extra_info") or {}
    tokens = extra.get("prompt_tokens")
    return {
        "data_source": str(row.get("data_source") or DATA_SOURCE),
        "prompt": [{"role": m["role"], "content": m["content"]} for m in chat],
        "ability": str(row.get("ability") or "general"),
        "reward_model": {"style": "model", "ground_truth": ""},
        "extra_info": {"split": split, "index": int(index), "prompt_tokens": int(tokens) if tokens is not None else -1},
    }


def read_prepared(path: str) -> list[dict]:
    rows = [row for _, row in iter_jsonl(path)]
    if not rows:
        raise GrloError("no prompts", path=path)
    return rows


VAL_DATA_SOURCE = "HuggingFaceH4/MATH-500"  # a source verl 0.6.1's default_compute_score scores as MATH


def validation_row(row: dict, index: int, path: str = "benchmark", lineno: int | None = None) -> dict:
    """A benchmark row (grlo's common schema: prompt, answer) as a rule-scored verl validation row."""
    where = f"line {lineno if lineno is not None else index + 1}"
    prompt, answer = row.get("prompt"), row.get("answer")
    if not isinstance(prompt, str) or not prompt.strip():
        raise GrloError("benchmark row needs a non-empty string `prompt`", path=path, field=where)
    if answer is None or not str(answer).strip():
        raise GrloError("benchmark row needs an `answer` (validation is rule-scored)", path=path, field=where)
    return {
        "data_source": VAL_DATA_SOURCE,
        "prompt": [{"role": "user", "content": prompt}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(answer)},
        "extra_info": {"split": "val", "index": int(index), "prompt_tokens": -1},
    }


def convert(prepared: str, val_benchmark: str, train_out: str, val_out: str) -> dict:
    """Write train/val parquet files; return counts. The train file holds every prepared prompt."""
    rows = read_prepared(prepared)
    train = [verl_row(r, i, "train", prepared) for i, r in enumerate(rows)]
    val = [validation_row(r, i, val_benchmark, n) for i, (n, r) in enumerate(iter_jsonl(val_benchmark))]
    if not val:
        raise GrloError("no validation rows", path=val_benchmark)
    write_parquet(train, train_out)
    write_parquet(val, val_out)
    return {"train": len(train), "val": len(val), "source": prepared, "val_source": val_benchmark}


def write_parquet(rows: list[dict], path: str) -> None:
    import pyarrow as pa  # heavy: pyarrow
    import pyarrow.parquet as pq  # heavy: pyarrow

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), str(tmp))


def read_verl_rows(path: str) -> list[dict]:
    """Read a parquet file the way verl 0.6.1's RLHFDataset does (datasets' parquet loader)."""
    import datasets  # heavy: datasets

    return [dict(r) for r in datasets.load_dataset("parquet", data_files=str(path))["train"]]


def prepared_prompt(verl_rows: list[dict], index: int) -> list[dict]:
    """The chat of the prepared row `index` (the inverse mapping, through extra_info.index)."""
    for r in verl_rows:
        if r["extra_info"]["index"] == index:
            return r["prompt"]
    raise KeyError(index)
