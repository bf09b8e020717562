"""PPO checkpoints: actor, critic, both optimizers, RNG states and the data position, written atomically.

Layout: <output-dir>/checkpoints/step_000012/{actor/, critic/, optim.pt, rng.pt, state.json}. A directory only
appears once complete (atomic rename), so `latest` never picks a half-written one after a kill.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import torch

from grlo.errors import GrloError
from grlo.io import atomic_dir, write_json


def _dist() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def full_model_state(model) -> dict:
    """Unsharded weights. Under FSDP2 this is a collective (every rank calls it); rank 0 gets the tensors on CPU."""
    if _dist():  # pragma: no cover - multi-GPU
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return model.state_dict()


def full_optim_state(model, opt) -> dict:
    if _dist():  # pragma: no cover - multi-GPU
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return opt.state_dict()


def rng_states() -> dict:
    out = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy as np

        out["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    if "numpy" in st:
        import numpy as np

        np.random.set_state(st["numpy"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save(path: Path, trainer, keep_last: int = 1) -> Path:
    from grlo.train.distributed import rank

    path = Path(path)
    # gathered on every rank (collectives under FSDP2), written by rank 0
    actor_sd, critic_sd = full_model_state(trainer.actor), full_model_state(trainer.critic)
    optim = {"actor": full_optim_state(trainer.actor, trainer.actor_opt),
             "critic": full_optim_state(trainer.critic, trainer.critic_opt)}
    if rank() == 0:
        with atomic_dir(path) as tmp:
            tmp = Path(tmp)
            trainer.actor.save_pretrained(tmp / "actor", state_dict=actor_sd)
            trainer.tokenizer.save_pretrained(tmp / "actor")
            trainer.critic.save_pretrained(tmp / "critic", state_dict=critic_sd)
            torch.save(optim, tmp / "optim.pt")
            torch.save(rng_states(), tmp / "rng.pt")
            epoch_pos = None
            if hasattr(trainer, "bs"):
                per_epoch = max(1, len(trainer.prompts.ids) // trainer.bs["train_batch_size"])
                epoch_pos = {"epoch": trainer.state.step // per_epoch,
                             "batch_in_epoch": trainer.state.step % per_epoch}
            write_json(tmp / "state.json", {"step": trainer.state.step, "data_position": epoch_pos,
                                            "batch_sizes": getattr(trainer, "bs", None)})
        if keep_last > 0:
            done = sorted(p for p in path.parent.glob("step_*") if p.is_dir() and (p / "state.json").exists())
            for old in done[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    if _dist():  # pragma: no cover
        torch.distributed.barrier()
    return path


def latest(root: Path) -> Path | None:
    root = Path(root)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and (p / "state.json").exists())
    return done[-1] if done else None


def load(path: Path, trainer) -> int:
    """Restore weights, optimizer and RNG states in place; return the completed step count."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GrloError(f"unreadable checkpoint state ({e})", path=str(path / "state.json")) from None
    for name, model in (("actor", trainer.actor), ("critic", trainer.critic)):
        files = sorted((path / name).glob("*.safetensors"))
        if not files:
            raise GrloError("no weights in checkpoint", path=str(path / name))
        sd = {}
        for f in files:
            sd.update(load_file(str(f)))
        if _dist():  # pragma: no cover - multi-GPU: every rank read the full file; each keeps its shard
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            set_model_state_dict(model, sd, options=StateDictOptions(full_state_dict=True, strict=False))
            continue
        missing, unexpected = model.load_state_dict(sd, strict=False)
        # tied embeddings are saved once: the missing tied key is expected
        real_missing = [k for k in missing if not (k.endswith("lm_head.weight") and model.config.tie_word_embeddings)]
        if real_missing or unexpected:
            raise GrloError(f"checkpoint does not match the model (missing {real_missing[:3]}, unexpected "
                            f"{unexpected[:3]})", path=str(path / name))
    opt = torch.load(path / "optim.pt", map_location="cpu", weights_only=False)
    if _dist():  # pragma: no cover
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        o = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(trainer.actor, trainer.actor_opt, opt["actor"], options=o)
        set_optimizer_state_dict(trainer.critic, trainer.critic_opt, opt["critic"], options=o)
    else:
        trainer.actor_opt.load_state_dict(opt["actor"])
        trainer.critic_opt.load_state_dict(opt["critic"])
    set_rng_states(torch.load(path / "rng.pt", weights_only=False))
    return int(state["step"])


def truncate_metrics(path: Path, step: int) -> list[dict]:
    """Keep the metric rows of completed steps <= `step` (rows after the checkpoint are recomputed on resume)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if row.get("step", 0) <= step:
            rows.append(row)
    from grlo.io import write_jsonl

    write_jsonl(path, rows)
    return rows
