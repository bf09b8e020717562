"""Run logging of the native PPO engine: metrics.jsonl rows (fsynced), the progress bar, TensorBoard / W&B."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from grlo.errors import GrloError


def append_jsonl(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def progress_bar(total: int, start: int, enabled: bool):
    from tqdm import tqdm  # optional: tqdm

    return tqdm(total=total, initial=start, desc="grlo ppo", unit="step", disable=not enabled, dynamic_ncols=True)


class Loggers:
    """TensorBoard / W&B, opt-in through grlo.logger (a list: console is the JSONL file + progress bar)."""

    def __init__(self, g: dict, out: Path):
        names = set(g.get("logger", []) or [])
        self.tb = self.wandb = None
        if "tensorboard" in names:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional: tensorboard
            except ImportError:
                raise GrloError("logger tensorboard needs the `tensorboard` package (pip install tensorboard)",
                                field="grlo.logger") from None

            self.tb = SummaryWriter(str(out / "tensorboard"))
        if "wandb" in names:  # pragma: no cover - network
            try:
                import wandb  # optional: wandb
            except ImportError:
                raise GrloError("logger wandb needs the `wandb` package (pip install wandb)", field="grlo.logger") from None

            self.wandb = wandb.init(project=g.get("project_name", "grlo"), name=g.get("experiment_name"), config=g)

    def log(self, row: dict) -> None:
        step = row["step"]
        for k, v in row.items():
            if isinstance(v, (int, float)) and math.isfinite(v) and k != "step":
                if self.tb:
                    self.tb.add_scalar(k, v, step)
        if self.wandb:  # pragma: no cover
            self.wandb.log(row, step=step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:  # pragma: no cover
            self.wandb.finish()
