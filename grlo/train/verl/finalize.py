"""After verl: its last FSDP checkpoint merged into a Hugging Face model at final/ (verl's own model merger), with the
policy tokenizer (the backbone's, as the native engine saves it) and manifest.json.

verl writes <checkpoints>/latest_checkpointed_iteration.txt (the last saved step) and global_step_N/actor/ (sharded);
`python -m verl.model_merger merge --backend fsdp --local_dir .../actor --target_dir DIR` writes the HF model.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from grlo.errors import GrloError

TRACKER = "latest_checkpointed_iteration.txt"


def latest_step(checkpoints: str | Path) -> int | None:
    f = Path(checkpoints) / TRACKER
    if not f.exists():
        return None
    text = f.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise GrloError(f"not a step number: {text!r}", path=str(f), field="latest checkpointed iteration")
    return int(text)


def actor_dir(checkpoints: str | Path, step: int) -> Path:
    return Path(checkpoints) / f"global_step_{step}" / "actor"


def merge_command(actor: str | Path, target: str | Path, python: str | None = None) -> list[str]:
    """verl's merger, run by the interpreter that has verl (grlo.train.verl.launch.verl_python)."""
    from grlo.train.verl.launch import verl_python

    return [python or verl_python(), "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(actor),
            "--target_dir", str(target)]


def finalize(checkpoints: str | Path, output_dir: str | Path, policy_init: str, manifest: dict,
             total_steps: int, run=subprocess.run) -> Path:
    """Merge the final checkpoint into <output_dir>/final (atomic), add the tokenizer and the manifest."""
    from transformers import AutoTokenizer

    from grlo.io import atomic_dir, library_versions, write_json

    step = latest_step(checkpoints)
    if step is None:
        raise GrloError("verl saved no checkpoint (no latest_checkpointed_iteration.txt): the run did not finish",
                        path=str(checkpoints))
    if step < total_steps:
        raise GrloError(f"the last checkpoint is step {step} of {total_steps}: the run did not finish; rerun the "
                        "rule to resume", path=str(checkpoints))
    actor = actor_dir(checkpoints, step)
    if not actor.is_dir():
        raise GrloError("checkpoint directory missing", path=str(actor))
    final = Path(output_dir) / "final"
    with atomic_dir(final) as tmp:
        proc = run(merge_command(actor, tmp), check=False)
        if proc.returncode != 0:
            raise GrloError(f"verl's model merger failed (exit {proc.returncode})", path=str(actor))
        AutoTokenizer.from_pretrained(policy_init).save_pretrained(tmp)
        write_json(Path(tmp) / "manifest.json", {**manifest, "steps": step, "engine": "verl",
                                                  "merged_from": str(actor),
                                                  "versions": library_versions(("torch", "transformers", "vllm",
                                                                                "verl", "ray"))})
    return final
