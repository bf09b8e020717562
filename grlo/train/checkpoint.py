"""PPO checkpoints: actor, critic, both optimizers, RNG states and the data position, written atomically, plus
what a resumed run needs to be the same run.

Layout: <output-dir>/checkpoints/step_000012/{actor/, critic/, optim.pt, rng.pt, state.json, metrics.jsonl}.
A directory only appears once complete (atomic rename), so `latest` never picks a half-written one after a kill.
  state.json     the step, the data position and the run's fingerprint (`fingerprint`): every setting, input and code
                 version that changes the numbers; a resume with a different one is refused (`check_fingerprint`).
  metrics.jsonl  the metric rows up to this step: Snakemake deletes a failed job's declared outputs (metrics.jsonl
                 among them), so the curve before the checkpoint is restored from here.
state.json also lists every other file's sha256 (`files`) and its own (`state_sha256`, of its other keys).
`latest_valid` checks them before a resume: a damaged newest checkpoint (truncated weights, optimizer or RNG state, a
flipped bit) is reported in one line and moved aside (`damaged.step_N`, removed with the other checkpoints once the
run finishes), and the one before is used (kept with grlo.keep_last >= 2).
Before a save, the free space is checked (`check_space`): one line naming what is needed instead of a crash mid-write.
`clean_litter` removes the temporary `.*.part` files and directories that a killed run leaves behind.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

import grlo
from grlo.errors import GrloError
from grlo.io import atomic_dir, iter_jsonl, write_json, write_jsonl
from grlo.train import checksums
from grlo.train.distributed import rank

log = logging.getLogger("grlo.train.checkpoint")
# the new checkpoint is written beside the previous one (removed only once the new one is complete), and the estimate
# counts tensors only (not the tokenizer, configs, metrics): ask for twice the tensors' bytes
SPACE_FACTOR = 2.0


def _dist() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def full_model_state(model) -> dict:
    """Unsharded weights. Under FSDP2 this is a collective (every rank calls it); rank 0 gets the tensors on CPU."""
    if _dist():  # pragma: no cover - multi-GPU
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict  # heavy: torch

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return model.state_dict()


def full_optim_state(model, opt) -> dict:
    if _dist():  # pragma: no cover - multi-GPU
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict  # heavy: torch

        return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return opt.state_dict()


def rng_states() -> dict:
    out = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy as np  # optional: numpy

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
        import numpy as np  # optional: numpy

        np.random.set_state(st["numpy"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# `grlo:` keys that change no number of the steps already taken: resuming with another value is allowed
# (the step budget may grow; a checkpoint past a smaller budget is refused by the trainer)
RESUMABLE_KEYS = ("save_freq", "keep_last", "resume", "fresh", "logger", "project_name", "experiment_name", "total_epochs",
                  "total_training_steps", "test_freq", "stop_grace_s", "engine")


def _flatten(d: dict, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = json.dumps(v, sort_keys=True)
    return out


def _file_id(path: Path, hash_limit: int) -> str:
    """sha256 of a file up to `hash_limit` bytes, size + mtime above it (model weights: GBs)."""
    st = path.stat()
    if st.st_size <= hash_limit:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return f"size:{st.st_size},mtime_ns:{st.st_mtime_ns}"


def input_id(path: str | Path, hash_limit: int = 64 * 2**20) -> str:
    """A file's identity, or a directory's (every file's relative path and identity, hashed together)."""
    p = Path(path)
    if p.is_file():
        return _file_id(p, hash_limit)
    if not p.is_dir():
        return "missing"
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{f.relative_to(p)}={_file_id(f, hash_limit)}\n".encode())
    return "dir:" + h.hexdigest()


def code_version(modules: tuple[str, ...], libraries: tuple[str, ...] = ("torch", "transformers")) -> dict[str, str]:
    """grlo's version and a hash of the sources that compute the numbers, and the versions of torch/transformers."""
    h = hashlib.sha256()
    for name in modules:
        mod = importlib.import_module(name)
        h.update(name.encode() + b"\0" + Path(mod.__file__).read_bytes())
    out = {"code.grlo": grlo.__version__, "code.sources_sha256": h.hexdigest()}
    for lib in libraries:
        try:
            out[f"code.{lib}"] = md.version(lib)
        except md.PackageNotFoundError:  # pragma: no cover
            out[f"code.{lib}"] = "absent"
    return out


def fingerprint(section: dict, inputs: dict[str, str], code: dict[str, str], extra: dict[str, Any] | None = None,
                name: str = "grlo", resumable: tuple[str, ...] = RESUMABLE_KEYS) -> dict[str, str]:
    """Flat {key: value} of everything that changes the numbers: the config section (less `resumable` top-level
    keys), the inputs' identities, the code version and `extra` (e.g. the process count)."""
    depth = name.count(".") + 1
    fp = {k: v for k, v in _flatten(section, name).items() if k.split(".")[depth] not in resumable}
    fp.update({f"inputs.{k}": input_id(v) for k, v in inputs.items()})
    fp.update(code)
    fp.update({f"run.{k}": json.dumps(v, sort_keys=True) for k, v in (extra or {}).items()})
    return fp


def _start_over(fresh_key: str) -> str:
    return f"set {fresh_key}: true in your config for one run (--fresh on the command line) to start over"


def check_fingerprint(saved: dict | None, current: dict, where: str, fresh_key: str = "grlo.fresh") -> None:
    """Refuse to resume a checkpoint written by another run, naming the keys that differ and the config key
    (`fresh_key`) that starts over: a Snakemake rule passes no command-line flag."""
    if saved is None:
        raise GrloError(f"checkpoint has no run fingerprint (written by an older grlo): {_start_over(fresh_key)}",
                        path=where)
    differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differ:
        shown = ", ".join(differ[:8]) + (f" and {len(differ) - 8} more" if len(differ) > 8 else "")
        raise GrloError(f"checkpoint was written by a run with other settings ({shown}): restore them to resume, or "
                        f"{_start_over(fresh_key)}", path=where)


def read_state(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GrloError(f"unreadable checkpoint state ({e})", path=str(Path(path) / "state.json")) from None


def clean_litter(*dirs: Path) -> list[Path]:
    """Remove the `.<name>.<random>.part` temporaries (grlo.io.atomic_path/atomic_dir) a killed run left."""
    removed = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in d.glob(".*.part"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def save(path: Path, trainer, keep_last: int = 1) -> Path:
    path = Path(path)
    # gathered on every rank (collectives under FSDP2), written by rank 0
    actor_sd, critic_sd = full_model_state(trainer.actor), full_model_state(trainer.critic)
    optim = {"actor": full_optim_state(trainer.actor, trainer.actor_opt),
             "critic": full_optim_state(trainer.critic, trainer.critic_opt)}
    if rank() == 0:
        check_space(path.parent, SPACE_FACTOR * tensor_bytes((actor_sd, critic_sd, optim)))
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
            write_jsonl(tmp / "metrics.jsonl", [r for r in trainer.state.metrics if r.get("step", 0) <= trainer.state.step])
            write_json(tmp / "state.json", sealed({"step": trainer.state.step, "data_position": epoch_pos,
                                                   "batch_sizes": getattr(trainer, "bs", None),
                                                   "fingerprint": getattr(trainer, "fingerprint", None),
                                                   "files": file_sums(tmp)}))
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


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in a (nested) state dict."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def check_space(where: Path, need: float) -> None:
    """Refuse a save that would not fit, with one line naming the need, before anything is written."""
    d = Path(where)
    while not d.exists() and d != d.parent:
        d = d.parent
    free = shutil.disk_usage(d).free
    if free < need:
        raise GrloError(f"not enough free space to save: it needs about {_size(need)} free ({SPACE_FACTOR:g}x its "
                        f"{_size(need / SPACE_FACTOR)} of tensors), {_size(free)} are free: free space, point outdir "
                        "elsewhere, or lower grlo.keep_last", path=str(where))


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def file_sums(d: Path) -> dict[str, str]:
    """sha256 of every file under a checkpoint directory but state.json, by relative path."""
    return checksums.file_sums(d, skip=("state.json",))


def _state_sum(state: dict) -> str:
    body = {k: v for k, v in state.items() if k != "state_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def sealed(state: dict) -> dict:
    """state.json's content with the sha256 of its other keys (as they read back from JSON)."""
    return {**state, "state_sha256": _state_sum(json.loads(json.dumps(state, default=str)))}


def damage(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed (None: every file is there with its recorded sha256)."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"state.json unreadable ({type(e).__name__})"
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        return "state.json has no file checksums (written by an older grlo)"
    if state.get("state_sha256") != _state_sum(state):
        return "state.json does not match its checksum"
    return checksums.mismatch(path, state["files"])


def latest_valid(root: Path) -> Path | None:
    """The newest checkpoint whose files match their checksums. Each damaged newer one is reported in one line and
    moved aside to `damaged.<name>` (kept for a look, not deleted on a possibly transient read error; the steps it
    held are trained again)."""
    root = Path(root)
    if not root.is_dir():
        return None
    damaged, found = [], None
    for p in sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True):
        why = damage(p)
        if why is None:
            found = p
            break
        damaged.append((p, why))
    checksums.move_aside(damaged, found.name if found else None)
    return found


def load(path: Path, trainer) -> int:
    """Restore weights, optimizer and RNG states in place; return the completed step count."""
    path = Path(path)
    state = read_state(path)
    for name, model in (("actor", trainer.actor), ("critic", trainer.critic)):
        files = sorted((path / name).glob("*.safetensors"))
        if not files:
            raise GrloError("no weights in checkpoint", path=str(path / name))
        sd = {}
        for f in files:
            sd.update(load_file(str(f)))
        if _dist():  # pragma: no cover - multi-GPU: every rank read the full file; each keeps its shard
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict  # heavy: torch

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
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict  # heavy: torch

        o = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(trainer.actor, trainer.actor_opt, opt["actor"], options=o)
        set_optimizer_state_dict(trainer.critic, trainer.critic_opt, opt["critic"], options=o)
    else:
        trainer.actor_opt.load_state_dict(opt["actor"])
        trainer.critic_opt.load_state_dict(opt["critic"])
    set_rng_states(torch.load(path / "rng.pt", weights_only=False))
    return int(state["step"])


def saved_metrics(path: Path) -> list[dict]:
    """The metric rows saved with a checkpoint (steps <= its step)."""
    f = Path(path) / "metrics.jsonl"
    return [row for _, row in iter_jsonl(f)] if f.exists() else []
