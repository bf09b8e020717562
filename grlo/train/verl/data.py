"""The prepared prompts in verl's RL dataset schema (parquet, as verl 0.6.1's RLHFDataset reads), and our validation
file.

Row schema (the official train.jsonl's, which is verl's): `prompt` (chat list of {role, content}), `data_source`,
`ability`, `reward_model` {style: "model", ground_truth: ""}, `extra_info` {split, index, prompt_tokens}.
`index` is the row's position in the prepared file, so every verl row maps back to its prompt.

Validation file (our definition; train.sh's `val_files` is not released): `grlo.verl.val_prompts` prompts drawn from
the prepared prompts with the config's seed, in file order. They are also training prompts (the public file has only
1,000): in-loop validation (verl greedy decoding, `val_before_train` and every `test_freq` steps) measures the RM
reward of greedy responses on seen prompts, a training-progress signal and a cost the paper's GPU-hours include, not a
generalisation measure.
"""

from __future__ import annotations

import random
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import iter_jsonl

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


def validation_indices(n: int, size: int, seed: int) -> list[int]:
    if size < 1:
        raise GrloError(f"val_prompts must be >= 1, got {size}", field="grlo.verl.val_prompts")
    return sorted(random.Random(seed).sample(range(n), min(size, n)))


def convert(prepared: str, train_out: str, val_out: str, val_size: int, seed: int) -> dict:
    """Write train/val parquet files; return counts. The train file holds every prepared prompt."""
    rows = read_prepared(prepared)
    train = [verl_row(r, i, "train", prepared) for i, r in enumerate(rows)]
    val = [verl_row(rows[i], i, "val", prepared) for i in validation_indices(len(rows), val_size, seed)]
    write_parquet(train, train_out)
    write_parquet(val, val_out)
    return {"train": len(train), "val": len(val), "source": prepared}


def write_parquet(rows: list[dict], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from grlo.io import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), str(tmp))


def read_verl_rows(path: str) -> list[dict]:
    """Read a parquet file the way verl 0.6.1's RLHFDataset does (datasets' parquet loader)."""
    import datasets

    return [dict(r) for r in datasets.load_dataset("parquet", data_files=str(path))["train"]]


def prepared_prompt(verl_rows: list[dict], index: int) -> list[dict]:
    """The chat of the prepared row `index` (the inverse mapping, through extra_info.index)."""
    for r in verl_rows:
        if r["extra_info"]["index"] == index:
            return r["prompt"]
    raise KeyError(index)
