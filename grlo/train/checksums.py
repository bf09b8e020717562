"""File checksums of a checkpoint directory, shared by both training engines: the native trainer records them in its
state.json (grlo.train.checkpoint), the verl engine in a file beside verl's own checkpoint (grlo.train.verl.seal).

Light on purpose (no torch): the verl engine's launcher checks a checkpoint before main_ppo starts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from grlo.io import sha256_file

log = logging.getLogger("grlo.train.checkpoint")


def file_sums(d: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under `d` by relative path, but the top-level names in `skip`."""
    d = Path(d)
    return {str(f.relative_to(d)): sha256_file(f) for f in sorted(d.rglob("*"))
            if f.is_file() and str(f.relative_to(d)) not in skip}


def mismatch(d: Path, files: dict[str, str]) -> str | None:
    """The first recorded file that is missing or differs from its sha256 (None: all match)."""
    for rel, want in files.items():
        f = Path(d) / rel
        if not f.is_file():
            return f"{rel} is missing"
        if sha256_file(f) != want:
            return f"{rel} does not match its sha256 (truncated or changed on disk)"
    return None


def move_aside(damaged: list[tuple[Path, str]], found: str | None) -> None:
    """Move each damaged checkpoint to `damaged.<name>` beside it (kept for a look, not deleted on a possibly
    transient read error) and say so in one line each, naming the checkpoint the run goes on from."""
    for p, why in damaged:
        aside = p.with_name(f"damaged.{p.name}")
        shutil.rmtree(aside, ignore_errors=True)
        p.rename(aside)
        log.warning("checkpoint %s is damaged (%s): moved to %s; %s", p, why, aside.name,
                    f"resuming from {found}" if found else "no earlier valid checkpoint: starting over")


def remove_damaged(root: Path) -> None:
    """Once a run has finished: the checkpoints moved aside are no longer needed."""
    for p in Path(root).glob("damaged.*"):
        shutil.rmtree(p, ignore_errors=True)
