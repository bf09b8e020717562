"""verl 0.6.1's `file` logger, made safe for a long run (fixed upstream after 0.6.1, verl PR #4811).

`verl.utils.tracking.FileLogger.log` `json.dumps` each step's metrics as they come, and some are 0-d torch tensors
(`global_seqlen/*` from the trainer's `_balance_batch`) or numpy scalars: `TypeError: Object of type Tensor is not
JSON serializable` after step 1, in the TaskRunner, with nothing saved. It also never flushes, so a killed run loses
its last rows. `install()` replaces that method: tensors and numpy values become plain numbers (lists for arrays),
anything else JSON cannot write becomes its text (a metric must never end the run; metrics.jsonl keeps numbers only),
and every line is flushed. grlo.train.verl.plugin calls it in verl's TaskRunner, before `Tracking` is built.
"""

from __future__ import annotations

import json
from typing import Any


def jsonable(v: Any) -> Any:
    """A metric value as JSON can write it: tensors / numpy scalars and arrays -> numbers or lists."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    tolist = getattr(v, "tolist", None)  # torch.Tensor, numpy.ndarray, numpy scalar
    if callable(tolist) and not isinstance(v, (str, bytes)):
        return jsonable(tolist())
    return v


def log(self, data, step):
    self.fp.write(json.dumps({"step": jsonable(step), "data": jsonable(data)}, default=str) + "\n")
    self.fp.flush()


def install() -> None:
    from verl.utils.tracking import FileLogger  # heavy: verl

    FileLogger.log = log
