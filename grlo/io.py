"""File helpers: atomic writes (nothing half-written on failure), JSONL, checksums, run metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from grlo.errors import GrloError, from_decode_error, from_os_error


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise GrloError("is a directory: give a file path", path=str(path))


@contextlib.contextmanager
def _user_errors(path: Path) -> Iterator[None]:
    """A full disk, a permission or a bad path while writing `path`: one line naming it (the temp file is gone)."""
    try:
        yield
    except OSError as e:
        err = from_os_error(e, path=str(path))
        if err is None:
            raise
        raise err from e


def _make_parents(path: Path) -> Path | None:
    """mkdir -p path.parent; return the topmost directory it created (None: all existed)."""
    top = None
    for d in reversed(path.parents):
        if not d.exists():
            top = d
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return top


def _remove_created(path: Path, top: Path | None) -> None:
    """After a failure: remove the directories _make_parents created, if still empty (no litter)."""
    if top is None:
        return
    d = path.parent
    while True:
        try:
            d.rmdir()
        except OSError:
            return
        if d == top:
            return
        d = d.parent


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block succeeds.
    On any failure (ENOSPC included) the temporary file is removed and nothing is left at `path`."""
    path = Path(path)
    _check_target(path)
    tmp_path, top, ok = None, None, False
    try:
        with _user_errors(path):
            top = _make_parents(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            os.close(fd)
            tmp_path = Path(tmp)
            yield tmp_path
            os.replace(tmp_path, path)
            ok = True
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()
        if not ok:
            _remove_created(path, top)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like atomic_path for a directory: built in a sibling temp dir, renamed on success."""
    import shutil

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GrloError("exists and is not a directory: remove it or choose another path", path=str(path))
    tmp, top, ok = None, None, False
    try:
        with _user_errors(path):
            top = _make_parents(path)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
            ok = True
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            _remove_created(path, top)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def open_input(path: str | os.PathLike, what: str = "file", newline: str | None = None, binary: bool = False):
    """Open an input file for reading; a missing, unreadable or directory path is a one-line GrloError naming it."""
    try:
        return open(path, "rb") if binary else open(path, encoding="utf-8", newline=newline)
    except FileNotFoundError:
        raise GrloError(f"{what} not found", path=str(path)) from None
    except IsADirectoryError:
        raise GrloError(f"{what} is a directory: give a file path", path=str(path)) from None
    except PermissionError:
        raise GrloError(f"{what} is not readable (permission denied)", path=str(path)) from None


def read_input(path: str | os.PathLike, what: str = "file") -> str:
    with open_input(path, what) as f:
        try:
            return f.read()
        except UnicodeDecodeError as e:
            raise from_decode_error(e, str(path)) from None


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(read_input(path))
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
    """Yield (line number, row); a malformed or non-UTF-8 line is a GrloError naming file and line."""
    with open_input(path, binary=True) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise from_decode_error(e, str(path), field=f"line {lineno}") from None
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
        raise GrloError(f"checksum mismatch: expected {expected}, got {actual} (not the pinned file: restore it or fix the "
                        f"pin)", path=str(path), field=what)
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
