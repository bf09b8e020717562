"""The reward verl's `batch` reward manager calls for the RLVR stages (`rlvr.engine: verl`): our General-Reasoner reward,
the same functions the TRL engine trains on (grlo.train.rlvr.reward_setup -> grlo.rewards.general_reasoner), so both
engines score a completion identically.

verl 0.6.1 imports this file through `custom_reward_function.path` and calls `compute_score_batch` once per batch with
the decoded responses (`skip_special_tokens=True`), each row's `reward_model.ground_truth` (the gold answer) and
`extra_info` (split, index, question: grlo.train.verl.rlvr_launch writes them), plus our
`custom_reward_function.reward_kwargs` (kind, verifier, verifier_path, verifier_max_new_tokens, tokenizer, log_path).
It returns one dict per row: `score` (the trained reward, placed by verl on the last response token), and the parts
`general_reasoner`, `correct`, `no_answer`, `length_penalty` (verl keeps them as reward_extra_info). Each call also
appends its means to `log_path` (split, call, n, reward/score_mean, reward/general_reasoner_mean, reward/correct_mean,
reward/no_answer_frac, reward/length_penalty_mean), which grlo.train.verl.metrics merges into metrics.jsonl.

The tokenizer (length penalty in policy tokens) and the model verifier are loaded once per process. Importing this
file (verl does it in its TaskRunner) also installs the GRLO engine's file-logger fix (grlo.train.verl.file_logger),
without which verl 0.6.1 stops after step 1 writing a tensor metric, and its checkpoint checksums
(grlo.train.verl.seal).
"""

from __future__ import annotations

import json
import os
import time
from functools import lru_cache

from grlo.rewards.general_reasoner import NO_ANSWER_REWARD
from grlo.train.rlvr_recipe import reward_setup
from grlo.train.verl import file_logger, seal

file_logger.install()  # verl's `file` logger: tensor metrics and per-line flush (grlo.train.verl.file_logger)
seal.install()  # each checkpoint verl saves gets its files' sha256, checked before a resume (grlo.train.verl.seal)

_CALLS = {"train": 0, "val": 0}


@lru_cache(maxsize=4)
def _setup(kind: str, verifier: str, verifier_path: str | None, verifier_max_new_tokens: int, tokenizer: str):
    from transformers import AutoTokenizer  # heavy: transformers (AutoTokenizer loads accelerate: 1 s in verl's env)

    tok = AutoTokenizer.from_pretrained(tokenizer)
    rc = {"kind": kind, "verifier": verifier, "verifier_path": verifier_path,
          "verifier_max_new_tokens": verifier_max_new_tokens}
    return reward_setup(rc, tok)


def score_texts(texts: list[str], golds: list[str], questions: list[str], funcs, weights) -> list[dict]:
    """Per row: the weighted reward (`score`) and its parts, from the [general_reasoner, correct] functions."""
    parts: dict[str, float] = {}
    shaped, correct = funcs
    gr = shaped(None, texts, golds, question=questions, log_metric=parts.__setitem__)
    ok = correct(None, texts, golds)
    return [{"score": weights[0] * g + weights[1] * c, "general_reasoner": float(g), "correct": float(c),
             "no_answer": float(g == NO_ANSWER_REWARD), "length_penalty": float(1.0 - g if 0.0 < g <= 1.0 else 0.0)}
            for g, c in zip(gr, ok)]


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, *, kind="general_reasoner",
                        verifier="math", verifier_path=None, verifier_max_new_tokens=1024, tokenizer=None,
                        log_path=None, **_):
    if tokenizer is None:
        raise RuntimeError("rlvr_reward: custom_reward_function.reward_kwargs.tokenizer is required (the policy's "
                           "tokenizer: the length penalty counts its tokens)")
    extras = list(extra_infos) if extra_infos is not None else [{} for _ in solution_strs]
    funcs, weights = _setup(kind, verifier, verifier_path, int(verifier_max_new_tokens), tokenizer)
    golds = [str(g) for g in ground_truths]
    questions = [str((e or {}).get("question", "")) for e in extras]
    rows = score_texts(list(solution_strs), golds, questions, funcs, weights)
    split = "val" if any((e or {}).get("split") == "val" for e in extras) else "train"
    _log(log_path, split, rows)
    return rows


def _log(log_path: str | None, split: str, rows: list[dict]) -> None:
    _CALLS[split] += 1
    n = max(len(rows), 1)
    rec = {"split": split, "call": _CALLS[split], "n": len(rows), "time": time.time(),
           "reward/score_mean": sum(r["score"] for r in rows) / n,
           "reward/general_reasoner_mean": sum(r["general_reasoner"] for r in rows) / n,
           "reward/correct_mean": sum(r["correct"] for r in rows) / n,
           "reward/no_answer_frac": sum(r["no_answer"] for r in rows) / n,
           "reward/length_penalty_mean": sum(r["length_penalty"] for r in rows) / n}
    print(f"[rlvr_reward] {split} call {_CALLS[split]}: " + ", ".join(
        f"{k}={v:.4f}" for k, v in rec.items() if k.startswith("reward/")), flush=True)
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
