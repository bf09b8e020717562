"""File helpers: atomic writes (nothing half-written on failure), JSONL, checksums, run metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from importlib import metadata
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


def umask() -> int:
    """The process umask, read without changing it (Linux /proc), else set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    old = os.umask(0o022)  # pragma: no cover
    os.umask(old)  # pragma: no cover
    return old  # pragma: no cover


def _as_created(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp create 0600/0700 (private): give the file the mode open()/mkdir() would, under the umask, so
    collaborators on a shared project directory can read the outputs."""
    os.chmod(path, mode & ~umask())


def follow_umask(root: Path) -> None:
    """Give every file and directory under `root` the mode open()/mkdir() would under the umask: writers that create
    private files (safetensors' save_file makes 0600 files; copies of a cache an older grlo wrote) do not make the
    outputs unreadable for collaborators. Executable files stay executable."""
    mask = umask()
    for d, dirs, files in os.walk(root):
        os.chmod(d, 0o777 & ~mask)
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                os.chmod(p, (0o777 if st.st_mode & 0o100 else 0o666) & ~mask)


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
            _as_created(tmp_path, 0o666)
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
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GrloError("exists and is not a directory: remove it or choose another path", path=str(path))
    tmp, top, ok = None, None, False
    try:
        with _user_errors(path):
            top = _make_parents(path)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
            _as_created(tmp, 0o777)
            yield tmp
            follow_umask(tmp)
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


def check_regular(path: str | os.PathLike, what: str = "file") -> None:
    """A FIFO, socket or device given as an input would block or stream forever: refused before it is opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # open() reports it
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise GrloError(f"{what} is {kind}: give a regular file", path=str(path))


def open_input(path: str | os.PathLike, what: str = "file", newline: str | None = None, binary: bool = False):
    """Open an input file for reading; a missing, unreadable or directory path, or one that is not a regular file (a
    FIFO would block forever), is a one-line GrloError naming it."""
    check_regular(path, what)
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
            line = json.dumps(row, ensure_ascii=False, default=str)
            if _has_surrogate(line):
                raise GrloError(f"row {n + 1} has {_surrogate_field(row)} with a lone UTF-16 surrogate, not valid "
                                "UTF-8 text: fix the text it came from", path=str(path))
            f.write(line + "\n")
            n += 1
    return n


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_field(obj: Any, where: str = "") -> str | None:
    """The dotted field of the first string holding a lone surrogate (JSON "\\ud800" decodes to one; no UTF-8
    writer or tokenizer accepts it)."""
    if isinstance(obj, str):
        return (where or "a value") if _has_surrogate(obj) else None
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for k, v in items:
        key = str(k)
        if _has_surrogate(key):
            return f"a key of {where or 'the row'}"
        sub = f"{where}{key}" if key.startswith("[") else (f"{where}.{key}" if where else key)
        found = _surrogate_field(v, sub)
        if found:
            return found
    return None


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
            if "\\ud" in line.lower():  # a \uXXXX escape of a surrogate: paired ones decode to one character
                bad = _surrogate_field(row)
                if bad:
                    raise GrloError(f"field {bad!r} has a lone UTF-16 surrogate escape (\\ud800-\\udfff), not valid "
                                    "text: fix the file", path=str(path), field=f"line {lineno}")
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
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def check_safetensors(path: str | os.PathLike) -> None:
    """A .safetensors file is complete: its header parses and the file holds every byte the header's tensors need
    (a truncated copy or download fails here with one line, not deep inside the model loader)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        header = f.read(n) if 0 < n <= min(size - 8, 100 * 2**20) else b""
    try:
        meta = json.loads(header.decode("utf-8")) if header else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict):
        raise GrloError(f"not a complete safetensors file (unreadable header, {size} bytes): the file is truncated or "
                        "damaged; fetch or copy it again", path=str(path))
    need = 8 + n + max((int(t["data_offsets"][1]) for k, t in meta.items()
                        if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t), default=0)
    if size < need:
        raise GrloError(f"truncated safetensors file ({size} of {need} bytes): fetch or copy it again", path=str(path))
