"""File helpers: atomic writes (nothing half-written on failure), JSONL, checksums, run metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from grlo.errors import GrloError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like atomic_path for a directory: built in a sibling temp dir, renamed on success."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def open_input(path: str | os.PathLike, what: str = "file", newline: str | None = None):
    """Open an input file for reading; a missing file is a one-line GrloError naming it."""
    try:
        return open(path, encoding="utf-8", newline=newline)
    except FileNotFoundError:
        raise GrloError(f"{what} not found", path=str(path)) from None


def read_input(path: str | os.PathLike, what: str = "file") -> str:
    with open_input(path, what) as f:
        return f.read()


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open_input(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise GrloError(f"invalid JSON at line {e.lineno}: {e.msg}", path=str(path)) from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row); a malformed line is a GrloError naming file and line."""
    with open_input(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise GrloError(f"malformed JSON ({e.msg})", path=str(path), field=f"line {lineno}") from None
            if not isinstance(row, dict):
                raise GrloError("row is not a JSON object", path=str(path), field=f"line {lineno}")
            yield lineno, row


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None, what: str = "sha256") -> str:
    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise GrloError(f"checksum mismatch: expected {expected}, got {actual}", path=str(path), field=what)
    return actual


def library_versions(names: Iterable[str] = ("torch", "transformers", "vllm", "trl", "math-verify", "evalplus", "lm-eval")) -> dict:
    """Installed versions of the libraries that move scores; recorded beside every output."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
