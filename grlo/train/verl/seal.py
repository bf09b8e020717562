"""Checksums for verl's checkpoints, so a damaged one is found before verl resumes from it (what the native engine's
state.json does for its own, grlo.train.checkpoint).

verl 0.6.1 writes <checkpoints>/global_step_N/{actor/, critic/, data.pt} and then its tracker
`latest_checkpointed_iteration.txt`; on `resume_mode=auto` it loads whatever the tracker names, so a truncated
weights, optimizer or data file stops every rerun with a traceback, and a flipped bit is trained on. Two parts:

- `install()` (in verl's trainer process: grlo.train.verl.plugin and rlvr_reward import it, as they do the file logger)
  wraps `RayPPOTrainer._save_checkpoint`: after verl's save, `global_step_N/grlo_checksums.json` lists the sha256 of
  every file of the step (written atomically, last).
- `check(checkpoints)` (grlo.train.verl.run, before main_ppo starts): the tracker's checkpoint must match its
  checksums. A damaged one is moved aside (`damaged.global_step_N`) in one line, and the tracker is pointed at the
  newest earlier checkpoint that matches (kept with grlo.keep_last >= 2), or removed, so verl starts over (one line).
  A checkpoint without the file (a run stopped while it was being hashed, or one from before this check) is resumed
  as verl would, with one warning line: it cannot be verified.

Cost: hashing every file of a step once per save and once per resume (about 1 GB/s: seconds for SmolLM2-135M, about
two minutes for Qwen3-4B's actor and critic with their fp32 optimizer states).
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from grlo.io import read_json, write_json, write_text
from grlo.train import checksums
from grlo.train.verl.finalize import TRACKER, latest_step

log = logging.getLogger("grlo.train.checkpoint")
SEAL = "grlo_checksums.json"
UNSEALED = "no checksums"  # damage() of a step verl saved without our file
_STEP = re.compile(r"global_step_(\d+)")


def seal(step_dir: str | Path) -> dict:
    """Record the sha256 of every file of a verl checkpoint step (the file itself written last, atomically)."""
    d = Path(step_dir)
    m = _STEP.fullmatch(d.name)
    body = {"step": int(m.group(1)) if m else None, "files": checksums.file_sums(d, skip=(SEAL,))}
    write_json(d / SEAL, body)
    return body


def damage(step_dir: str | Path) -> str | None:
    """Why a sealed checkpoint step cannot be resumed (None: every file matches). Unsealed: `UNSEALED`."""
    d = Path(step_dir)
    if not (d / SEAL).exists():
        return UNSEALED
    try:
        body = read_json(d / SEAL)
    except Exception as e:  # noqa: BLE001 - any unreadable seal is a damaged checkpoint, named
        return f"{SEAL} unreadable ({type(e).__name__})"
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict) or not body["files"]:
        return f"{SEAL} lists no files"
    return checksums.mismatch(d, body["files"])


def sealed_step(checkpoints: str | Path) -> int | None:
    """The tracker's step once its checksums are written (the end of a save, as grlo seals it), else None."""
    step = latest_step(checkpoints)
    return step if step is not None and (Path(checkpoints) / f"global_step_{step}" / SEAL).exists() else None


def _steps(checkpoints: Path, upto: int) -> list[tuple[int, Path]]:
    """verl's checkpoint steps up to the tracker's, newest first (a step whose actor verl removed is no checkpoint)."""
    found = []
    for p in checkpoints.iterdir() if checkpoints.is_dir() else ():
        m = _STEP.fullmatch(p.name)
        if m and p.is_dir() and int(m.group(1)) <= upto and (p / "actor").is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def check(checkpoints: str | Path) -> int | None:
    """Before verl resumes: the step it will resume from, after moving damaged checkpoints aside and pointing its
    tracker at the newest sound one (None: nothing to resume, verl starts over)."""
    root = Path(checkpoints)
    step = latest_step(root)
    if step is None:
        return None
    damaged, found = [], None
    for n, d in _steps(root, step):
        why = damage(d)
        if why == UNSEALED:
            log.warning("checkpoint %s has no %s (the run stopped while it was hashed, or an older grlo wrote it): "
                        "resumed unverified", d, SEAL)
        elif why is not None:
            damaged.append((d, why))
            continue
        found = n
        break
    if found is None and not damaged:  # the tracker names a step whose actor checkpoint is gone
        log.warning("checkpoint %s has no actor checkpoint (named by verl's %s); no earlier valid checkpoint: "
                    "starting over", root / f"global_step_{step}", TRACKER)
    checksums.move_aside(damaged, f"global_step_{found}" if found is not None else None)
    tracker = root / TRACKER
    if found is None:
        tracker.unlink(missing_ok=True)
    elif found != step:
        write_text(tracker, str(found))
    return found


def _sealed_save(save):
    @functools.wraps(save)
    def wrapper(self, *args, **kwargs):
        out = save(self, *args, **kwargs)
        root = self.config.trainer.default_local_dir
        seal(Path(root) / f"global_step_{self.global_steps}")
        return out

    wrapper.__grlo_sealed__ = True
    return wrapper


def install() -> None:
    """Seal every checkpoint verl's trainer saves (idempotent)."""
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer  # heavy: verl

    if not getattr(RayPPOTrainer._save_checkpoint, "__grlo_sealed__", False):
        RayPPOTrainer._save_checkpoint = _sealed_save(RayPPOTrainer._save_checkpoint)
