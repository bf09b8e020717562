"""grlo's own lock on an output: one trainer or scorer per output directory (or output file) at a time.

Snakemake's lock guards its own DAG only, and `snakemake --unlock` (which Snakemake itself advises after a crash)
removes it while jobs may still run: then two trainers could share one checkpoint directory and delete each other's
checkpoints. This lock lives beside the output (`<output-dir>/.grlo-lock` or `.<file>.grlo-lock`), so `--unlock`
never touches it. It is an flock on that file (released by the kernel when its holder dies, `kill -9` included) and
the file records the holder (host, pid, process start, start time) for the one-line refusal. Taken by `grlo.cli` for
the commands in `LOCKED`, so both training engines (native and verl) and the scorer pass through it.

  - held by a live process: refused with one line naming host, pid and start time;
  - left by a dead process on this host (pid gone, or reused by another process): taken over, with one line;
  - left on another host: taken over once its heartbeat (the file's mtime, touched every HEARTBEAT_S) is older than
    STALE_S, else refused (a job on another node may still run; a shared file system may not share flocks).

Processes a holder starts (torchrun / accelerate workers re-entering `grlo.cli`) inherit GRLO_HELD_LOCKS and pass.
This module is low in the layers: it imports nothing of grlo but errors and io.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

from grlo.errors import GrloError
from grlo.io import _make_parents, _remove_created

log = logging.getLogger(__name__)

ENV = "GRLO_HELD_LOCKS"
HEARTBEAT_S = 30.0
STALE_S = 600.0
# command -> (argument holding the output, whether it is a directory); arguments absent or None: no lock
LOCKED = {"train-grlo": ("output_dir", True), "train-rlvr": ("output_dir", True), "score": ("output", False)}


def lock_file(target: str | os.PathLike, is_dir: bool) -> Path:
    t = Path(target)
    return t / ".grlo-lock" if is_dir else t.parent / f".{t.name}.grlo-lock"


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (with the boot id): a reused pid has another one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _proc_start(pid)
    return start is None or now is None or now == start


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"unreadable": raw[:80].decode("utf-8", "replace")}
    return info if isinstance(info, dict) else {}


def _holder(info: dict) -> str:
    return (f"pid {info.get('pid')} on host {info.get('host')} ({info.get('command', 'grlo')}, started "
            f"{info.get('started', '?')})")


def _inherited(path: Path) -> bool:
    """Held for us already: by the process that launched this one (ENV), or by rank 0 of a torchrun/accelerate launch
    of this same command (the other ranks of one trainer share its output directory)."""
    if int(os.environ.get("RANK", "0") or 0) != 0 or int(os.environ.get("LOCAL_RANK", "0") or 0) != 0:
        return True
    return str(path.resolve()) in os.environ.get(ENV, "").split(os.pathsep)


def _beat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        with contextlib.suppress(OSError):
            os.utime(path)


def _open_locked(path: Path, target: str, command: str, what: str) -> int:
    """Open `path` and take its flock, retrying when a releasing holder unlinked it in between; return the fd."""
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fd)
            os.close(fd)
            raise GrloError(f"{what} is in use by {_holder(info)}: a second {command} would overwrite its files; "
                            f"wait for it to end (a lock of grlo's own, not Snakemake's: --unlock does not remove it)",
                            path=target) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    raise GrloError("could not take the output lock (it keeps changing)", path=str(path))  # pragma: no cover


@contextlib.contextmanager
def hold(target: str | os.PathLike, is_dir: bool, command: str = "grlo") -> Iterator[Path | None]:
    """Hold the lock of an output directory (or file) for the block; refused with one line while another live grlo
    holds it. The directory is created for the lock, and removed again if the block leaves it empty."""
    path = lock_file(target, is_dir)
    if _inherited(path):
        yield None
        return
    top = _make_parents(path)
    what = "output directory" if is_dir else "output file"
    try:
        fd = _open_locked(path, str(target), command, what)
    except BaseException:
        _remove_created(path, top)
        raise
    try:
        old = _read(fd)
        if old.get("pid") is not None:
            here = socket.gethostname()
            if old.get("host") == here:
                if _alive(int(old["pid"]), old.get("proc_start")):
                    raise GrloError(f"{what} is in use by {_holder(old)}, which still runs: wait for it to end",
                                    path=str(target))
            elif time.time() - os.fstat(fd).st_mtime < STALE_S:
                raise GrloError(f"{what} is in use by {_holder(old)} (heartbeat {time.time() - os.fstat(fd).st_mtime:.0f} s "
                                f"ago): wait for it, or if no job runs there, delete {path}", path=str(target))
            print(f"grlo {command}: taking over the lock of {_holder(old)}, which is no longer running", flush=True)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "proc_start": _proc_start(os.getpid()),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": f"grlo {command}"}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _remove_created(path, top)
        raise
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(path, stop), daemon=True, name="grlo-lock-heartbeat")
    beat.start()
    held = os.environ.get(ENV)
    os.environ[ENV] = os.pathsep.join(filter(None, [held, str(path.resolve())]))
    try:
        yield path
    finally:
        stop.set()
        if held is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = held
        with contextlib.suppress(OSError):
            path.unlink()  # before the unlock: a waiter that opened the old file re-opens (_open_locked)
        os.close(fd)
        _remove_created(path, top)


def for_command(command: str, args) -> contextlib.AbstractContextManager:
    """The lock a CLI command takes on its output (none for other commands, dry runs and absent outputs)."""
    spec = LOCKED.get(command)
    target = getattr(args, spec[0], None) if spec else None
    if not target or getattr(args, "dry_run", False):
        return contextlib.nullcontext()
    return hold(target, spec[1], command)
