"""Scorers by kind. Each kind is a module exposing

    score(spec, problems, completions, options) -> ScoreResult

where `problems` are normalised benchmark rows, `completions[i]` the (think-stripped) completions for problems[i].
A ScoreResult holds one record per problem {"extracted": [...], "scores": [...], "verdicts": [...]} (scores in
[0, 1]) and, for kinds whose metric is not a mean of per-sample scores (AlpacaEval's LC win rate), a `summary`
{"value", "stderr", ...} that replaces the generic one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from grlo.errors import GrloError

KINDS = {
    "math": "grlo.eval.scorers.math",
    "choice": "grlo.eval.scorers.choice",
    "evalplus": "grlo.eval.scorers.evalplus",
    "lcb": "grlo.eval.scorers.lcb",
    "ifeval": "grlo.eval.scorers.ifeval",
    "alpacaeval": "grlo.eval.scorers.alpacaeval",
}


@dataclass
class ScoreResult:
    records: list[dict]
    summary: dict | None = None
    info: dict = field(default_factory=dict)  # scorer details recorded in the summary's protocol


def get(kind: str):
    if kind not in KINDS:
        raise GrloError(f"unknown scorer kind {kind!r} (known: {', '.join(KINDS)})")
    return importlib.import_module(KINDS[kind])
