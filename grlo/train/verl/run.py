"""One main_ppo run for a plan (GRLO's, grlo.train.train_grlo, or RLVR's, grlo.train.verl.rlvr_launch): skipped when
verl already finished it, repeated once on CPU when Ray's start-up timed out."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from grlo.errors import GrloError
from grlo.train import checksums
from grlo.train.verl import finalize, launch, seal

log = logging.getLogger(__name__)


def train(p: dict, port: int, cwd: str, run=None) -> int:
    """Run main_ppo for plan `p` (GRLO's or RLVR's): nothing when verl already finished this run (e.g. the merge
    failed; resuming would train a step past the end), and on CPU once more when it died before its trainer opened
    its log (Ray's fixed 30 s start-up wait times out on a loaded machine; the state is still empty). `run`: the
    launcher (default run_verl; tests pass their own). A damaged latest checkpoint is moved aside first
    (grlo.train.verl.seal: verl resumes from the newest sound one, or starts over)."""
    seal.check(p["paths"].checkpoints)
    done = finalize.finished_step(p["paths"].checkpoints)
    if done is not None:
        log.info("verl finished this run at step %d before: finalising without training", done)
        return 0
    start = finalize.latest_step(p["paths"].checkpoints)
    if start is not None:
        log.info("resumed from verl's checkpoint at step %d (%s): verl trains from step %d", start,
                 p["paths"].checkpoints, start + 1)
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    launcher = run or launch.run_verl
    go = lambda: launcher(p["cmd"], p["env"], p["nnodes"], p["gpus_per_node"], port, image,  # noqa: E731
                          cpu=p["cpu"], cwd=cwd)
    rc = go()
    if rc != 0 and p["cpu"] and not Path(p["env"]["VERL_FILE_LOGGER_PATH"]).exists():
        log.warning("verl main_ppo exited with %d before its trainer started; launching it once more", rc)
        rc = go()
    return rc


def train_and_finish(p: dict, port: int, cwd: str, write_metrics, run=None) -> int:
    """`train`, then what both verl engines do after it: our metrics.jsonl written (also after a failure: the steps
    that ran are kept), a failed run one error line, and the step verl finished at recorded (verl's own count, after
    filter_overlong_prompts, may differ from the plan). Returns that step."""
    rc = train(p, port, cwd, run=run)
    write_metrics()
    if rc != 0:
        raise GrloError(f"verl main_ppo exited with {rc}; rerun the rule to resume from the last checkpoint",
                        path=str(p["logs"]))
    step = finalize.mark_finished(p["paths"].checkpoints, p["total_steps"])
    checksums.remove_damaged(p["paths"].checkpoints)
    if step != p["total_steps"]:
        log.warning("verl finished at step %d, planned %d (verl's own count, after filter_overlong_prompts)", step,
                    p["total_steps"])
    return step
