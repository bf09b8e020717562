"""`grlo prepare-prompts`: validate every row, drop over-long prompts (backbone tokens, chat template applied,
as verl's filter_overlong_prompts does), remove duplicates, write the prepared set and its stats."""

from __future__ import annotations

import argparse
import logging
import re

from grlo import config as C
from grlo.errors import GrloError
from grlo.io import iter_jsonl, write_json, write_jsonl
from grlo.models.local import check_model_dir

log = logging.getLogger(__name__)
_ROLES = {"system", "user", "assistant"}


def validate_row(row: dict, path: str, lineno: int) -> list[dict]:
    """Return the chat messages of a row in the official format; raise naming the file, line and field."""
    where = f"line {lineno}"
    if "prompt" not in row:
        raise GrloError("missing field 'prompt'", path=path, field=where)
    msgs = row["prompt"]
    if not isinstance(msgs, list) or not msgs:
        raise GrloError("field 'prompt' must be a non-empty list of chat messages", path=path, field=where)
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise GrloError(f"prompt[{i}] must be an object with a string 'content'", path=path, field=where)
        if m.get("role") not in _ROLES:
            raise GrloError(f"prompt[{i}].role is {m.get('role')!r} (allowed: system, user, assistant)", path=path, field=where)
    if msgs[-1]["role"] != "user":
        raise GrloError(f"the last message must have role 'user', got {msgs[-1]['role']!r}", path=path, field=where)
    if not msgs[-1]["content"].strip():
        raise GrloError("the user message is empty", path=path, field=where)
    extra = row.get("extra_info")
    if extra is not None and not isinstance(extra, dict):
        raise GrloError("field 'extra_info' must be an object", path=path, field=where)
    index = (extra or {}).get("index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, (int, str))):
        raise GrloError(f"extra_info.index must be an integer or a string, got {index!r}", path=path, field=where)
    return msgs


def check_unique_index(rows, path: str) -> None:
    """extra_info.index identifies a prompt (metrics, resume order): two rows with one index are an input error."""
    first: dict = {}
    for lineno, row in rows:
        index = (row.get("extra_info") or {}).get("index")
        if index is None:
            continue
        if index in first:
            raise GrloError(f"duplicate extra_info.index {index!r} (first at line {first[index]}): give every prompt "
                            f"a unique index", path=path, field=f"line {lineno}")
        first[index] = lineno


def _dedup_key(msgs: list[dict]) -> str:
    return "\x00".join(re.sub(r"\s+", " ", m["content"]).strip().casefold() for m in msgs)


def percentiles(values: list[int], qs=(50, 90, 95, 99)) -> dict:
    """Nearest-rank percentiles (no interpolation: they are token counts)."""
    if not values:
        return {f"p{q}": None for q in qs}
    s = sorted(values)
    out = {}
    for q in qs:
        rank = max(1, -(-q * len(s) // 100))  # ceil(q/100 * n)
        out[f"p{q}"] = s[rank - 1]
    return out


def prepare(rows_iter, path: str, count_tokens, max_tokens: int):
    kept, seen = [], set()
    n_in = n_long = n_dup = 0
    lengths = []
    for lineno, row in rows_iter:
        n_in += 1
        msgs = validate_row(row, path, lineno)
        key = _dedup_key(msgs)
        if key in seen:
            n_dup += 1
            continue
        seen.add(key)
        n = count_tokens(msgs)
        if n > max_tokens:
            n_long += 1
            continue
        lengths.append(n)
        kept.append({**row, "extra_info": {**(row.get("extra_info") or {}), "prompt_tokens": n}})
    if not kept:
        raise GrloError("no prompt left after filtering", path=path)
    stats = {
        "count": len(kept),
        "count_in": n_in,
        "dropped_overlong": n_long,
        "dropped_duplicates": n_dup,
        "max_prompt_tokens": max_tokens,
        "token_length": {"mean": round(sum(lengths) / len(lengths), 2), "min": min(lengths), "max": max(lengths), **percentiles(lengths)},
    }
    return kept, stats


def chat_token_counter(tokenizer_dir: str):
    from transformers import AutoTokenizer  # heavy: transformers

    tok = AutoTokenizer.from_pretrained(check_model_dir(tokenizer_dir, "tokenizer", weights=False, tokenizer=True))

    def count(msgs: list[dict]) -> int:
        ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    return count


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True)
    p.add_argument("--input", required=True, help="raw prompt JSONL (official format)")
    p.add_argument("--tokenizer", required=True, help="backbone model dir whose tokenizer/chat template counts tokens")
    p.add_argument("--output", required=True)
    p.add_argument("--stats", required=True)


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    max_tokens = int(cfg["prompts"]["max_prompt_tokens"])
    # Validate the whole file before loading a tokenizer: a corrupt file fails fast.
    rows = list(iter_jsonl(args.input))
    if not rows:
        raise GrloError("the prompt file has no rows", path=args.input)
    for lineno, row in rows:
        validate_row(row, args.input, lineno)
    check_unique_index(rows, args.input)
    kept, stats = prepare(rows, args.input, chat_token_counter(args.tokenizer), max_tokens)
    write_jsonl(args.output, kept)
    write_json(args.stats, stats)
    log.info("prepared %d prompts (%s)", stats["count"], stats)
    print(f"prompts: kept {stats['count']} of {stats['count_in']} -> {args.output}")
    return 0
