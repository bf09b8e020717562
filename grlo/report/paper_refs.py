"""Reference numbers with provenance: the committed CSVs under results/paper/ (one per source).

Every row carries a source URL and a certainty (known | inferred); loading refuses a row without them, so a table
can never print a paper number that has no source. Nothing here is typed in code: the CSVs are the only copy.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from grlo.config import REPO_ROOT
from grlo.errors import GrloError
from grlo.io import open_input

DEFAULT_DIR = REPO_ROOT / "results" / "paper"
FILES = {
    "abstract": "abstract_claims.csv",  # the abstract (results/README.md, "What is known about the paper")
    "baseline": "rlvr_baseline_cost.csv",  # section 3 (inferred)
    "qwen3": "qwen3_report.csv",  # section 5
}
COLUMNS = ["key", "quantity", "model", "benchmark", "value", "text", "unit", "protocol", "certainty", "source", "url",
           "location"]
CERTAINTIES = ("known", "inferred")


@dataclass(frozen=True)
class Ref:
    key: str
    quantity: str
    model: str
    benchmark: str
    value: float | None
    text: str
    unit: str
    protocol: str
    certainty: str
    source: str
    url: str
    location: str
    file: str

    def cite(self) -> str:
        """Short provenance string for table notes: 'source, location (certainty) url'."""
        return f"{self.source}, {self.location} ({self.certainty}) {self.url}"


def _parse_value(raw: str, path: str, lineno: int) -> float | None:
    if raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise GrloError(f"value {raw!r} is not a number", path=path, field=f"line {lineno}: value") from None


def load_file(path: str | os.PathLike) -> list[Ref]:
    path = str(path)
    with open_input(path, "reference file", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise GrloError(f"columns must be {','.join(COLUMNS)}", path=path, field="header")
        refs = []
        for lineno, row in enumerate(reader, 2):
            for col in ("key", "source", "url"):
                if not (row.get(col) or "").strip():
                    raise GrloError(f"empty {col!r}: every reference needs a key and a source", path=path,
                                    field=f"line {lineno}")
            if row["certainty"] not in CERTAINTIES:
                raise GrloError(f"certainty {row['certainty']!r} must be one of {', '.join(CERTAINTIES)}", path=path,
                                field=f"line {lineno}")
            value = _parse_value(row["value"], path, lineno)
            refs.append(Ref(**{c: row[c] for c in COLUMNS if c != "value"}, value=value, file=Path(path).name))
    return refs


class PaperRefs:
    """All reference rows, addressable by (source, key) or by (model, benchmark)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else DEFAULT_DIR
        self.by_source: dict[str, dict[str, Ref]] = {}
        for source, name in FILES.items():
            refs = load_file(self.directory / name)
            keys: dict[str, Ref] = {}
            for r in refs:
                if r.key in keys:
                    raise GrloError(f"duplicate key {r.key!r}", path=str(self.directory / name))
                keys[r.key] = r
            self.by_source[source] = keys

    def get(self, source: str, key: str) -> Ref:
        try:
            return self.by_source[source][key]
        except KeyError:
            raise GrloError(f"no reference {key!r} in {FILES.get(source, source)}", path=str(self.directory)) from None

    def value(self, source: str, key: str) -> float | None:
        return self.get(source, key).value

    def for_model_benchmark(self, model: str, benchmark: str, source: str = "qwen3") -> Ref | None:
        for r in self.by_source[source].values():
            if r.model == model and r.benchmark == benchmark and r.value is not None:
                return r
        return None

    def all(self) -> list[Ref]:
        return [r for refs in self.by_source.values() for r in refs.values()]
