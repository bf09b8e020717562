"""Stopping on SIGTERM/SIGINT (a SLURM cancel or time-out, Ctrl-C) with a checkpoint when one fits in time; shared by
the native GRLO trainer (grlo.train.ppo) and the RLVR trainer (grlo.train.rlvr, through a TRL callback)."""

from __future__ import annotations

import logging
import signal
import threading
import time

import torch

from grlo.train.distributed import dist_on, world_size

log = logging.getLogger("grlo.train")


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT ended the run (after a checkpoint when one fitted in the grace time)."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by signal {signum} after step {step}")
        self.signum, self.step = signum, step


class StopOnSignal:
    """SIGTERM/SIGINT handling for the loop. The first signal asks the loop to stop after the current step and save a
    checkpoint, when the rest of the step plus a save fits in `grace_s` (SLURM kills `KillWait`, 30 s by default,
    after its SIGTERM); otherwise, or at a second signal, it interrupts at once (temporary files are removed on the
    way out). Several processes (torchrun) never interrupt at once on the first signal: they agree at the step's end."""

    def __init__(self, grace_s: float, save_s: float):
        self.grace_s, self.save_s = grace_s, save_s
        self.signum: int | None = None
        self.step_s: float | None = None
        self._t0 = time.monotonic()
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handle(self, signum, frame):
        first = self.signum is None
        self.signum = signum
        left = max(0.0, (self.step_s or float("inf")) - (time.monotonic() - self._t0))
        if not first or (world_size() == 1 and left + self.save_s > self.grace_s):
            log.warning("signal %d: stopping now, no checkpoint (%.0f s left in the step + %.0f s to save > %.0f s)",
                        signum, left, self.save_s, self.grace_s)
            raise TrainingInterrupted(signum, -1)
        log.warning("signal %d: stopping after this step with a checkpoint", signum)

    def step_started(self) -> None:
        self._t0 = time.monotonic()

    def since_step_start(self) -> float:
        return time.monotonic() - self._t0

    def step_finished(self) -> None:
        self.step_s = time.monotonic() - self._t0

    def saved(self, seconds: float) -> None:
        self.save_s = seconds

    def requested(self) -> bool:
        flag = self.signum is not None
        if dist_on():  # pragma: no cover - every process stops at the same step
            t = torch.tensor([float(flag)], device="cuda" if torch.cuda.is_available() else "cpu")
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flag = bool(t.item())
            if flag and self.signum is None:
                self.signum = signal.SIGTERM
        return flag
