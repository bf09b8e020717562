"""After verl: its last FSDP checkpoint merged into a Hugging Face model at final/ (verl's own model merger), with the
policy tokenizer (the backbone's, as the native engine saves it) and manifest.json.

verl writes <checkpoints>/latest_checkpointed_iteration.txt (the last saved step) and global_step_N/actor/ (sharded);
`python -m verl.model_merger merge --backend fsdp --local_dir .../actor --target_dir DIR` writes the HF model.

The final step is verl's own: when `main_ppo` exits 0 its loop reached the step count it computed itself (after
`filter_overlong_prompts`, which our planned count cannot see), and it saves on that last step; `mark_finished`
records it (FINISHED) so a rerun finalises instead of resuming one step past the end.

Tied embeddings: verl 0.6.1's merger writes both `model.embed_tokens.weight` and `lm_head.weight` for a model with
`tie_word_embeddings: true` (fixed upstream in verl PR #6334). `final/` keeps one copy, as transformers saves a tied
model, so every loader (the RLVR stage's transformers 5 included) ties them again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import atomic_dir, library_versions, write_json
from grlo.train.verl.launch import verl_python

TRACKER = "latest_checkpointed_iteration.txt"
FINISHED = "finished.json"


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
    return [python or verl_python(), "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(actor),
            "--target_dir", str(target)]


def mark_finished(checkpoints: str | Path, planned_steps: int | None = None) -> int:
    """After main_ppo exited 0: its last checkpoint is its final step (verl's own count); record it."""
    step = latest_step(checkpoints)
    if step is None:
        raise GrloError("verl exited 0 but saved no checkpoint (trainer.save_freq <= 0?)", path=str(checkpoints))
    write_json(Path(checkpoints) / FINISHED, {"step": step, "planned_steps": planned_steps})
    return step


def finished_step(checkpoints: str | Path) -> int | None:
    """The final step of a finished run (mark_finished), if its checkpoint is still the latest; else None."""
    f = Path(checkpoints) / FINISHED
    if not f.exists():
        return None
    step = int(json.loads(f.read_text(encoding="utf-8"))["step"])
    return step if latest_step(checkpoints) == step else None


def tie_embeddings(model_dir: str | Path) -> bool:
    """Drop the merger's duplicate `lm_head.weight` of a tied model (equal to the embedding); True if dropped."""
    import torch  # heavy: torch
    from safetensors.torch import load_file, save_file  # heavy: torch

    d = Path(model_dir)
    if not json.loads((d / "config.json").read_text(encoding="utf-8")).get("tie_word_embeddings"):
        return False
    dropped = False
    for f in sorted(d.glob("*.safetensors")):
        tensors = load_file(str(f))
        if "lm_head.weight" not in tensors:
            continue
        emb = next((t for k, t in tensors.items() if k.endswith("embed_tokens.weight")), None)
        if emb is None:
            raise GrloError("a tied model's lm_head.weight and its embedding are in different files", path=str(f))
        if not torch.equal(emb, tensors["lm_head.weight"]):
            raise GrloError("tie_word_embeddings is true but lm_head.weight differs from the embedding", path=str(f))
        del tensors["lm_head.weight"]
        save_file(tensors, str(f), metadata={"format": "pt"})
        dropped = True
    index = d / "model.safetensors.index.json"
    if dropped and index.exists():
        idx = json.loads(index.read_text(encoding="utf-8"))
        idx.get("weight_map", {}).pop("lm_head.weight", None)
        index.write_text(json.dumps(idx, indent=2), encoding="utf-8")
    return dropped


def finalize(checkpoints: str | Path, output_dir: str | Path, policy_init: str, manifest: dict,
             run=subprocess.run) -> Path:
    """Merge the finished run's final checkpoint (mark_finished) into <output_dir>/final (atomic), add the tokenizer
    and the manifest."""
    from transformers import AutoTokenizer  # heavy: transformers

    step = latest_step(checkpoints)
    if step is None:
        raise GrloError("verl saved no checkpoint (no latest_checkpointed_iteration.txt): the run did not finish",
                        path=str(checkpoints))
    if finished_step(checkpoints) != step:
        raise GrloError(f"the last checkpoint is step {step} and verl has not finished the run; rerun the rule to "
                        "resume", path=str(checkpoints))
    actor = actor_dir(checkpoints, step)
    if not actor.is_dir():
        raise GrloError("checkpoint directory missing", path=str(actor))
    final = Path(output_dir) / "final"
    with atomic_dir(final) as tmp:
        proc = run(merge_command(actor, tmp), check=False)
        if proc.returncode != 0:
            raise GrloError(f"verl's model merger failed (exit {proc.returncode})", path=str(actor))
        tied = tie_embeddings(tmp)
        AutoTokenizer.from_pretrained(policy_init).save_pretrained(tmp)
        write_json(Path(tmp) / "manifest.json", {**manifest, "steps": step, "engine": "verl",
                                                  "merged_from": str(actor), "tied_embeddings_merged": tied,
                                                  "versions": library_versions(("torch", "transformers", "vllm",
                                                                                "verl", "ray"))})
    return final
