"""Check a local Hugging Face model or tokenizer directory before `from_pretrained` reads it.

`from_pretrained` treats a path that does not exist as a hub repo id and fails with "Repo id must be in the form
'repo_name' or 'namespace/repo_name'", and a directory without weights fails deep inside transformers. Every loader
of a model we materialised (generation, judges, reward models, training) calls `check_model_dir` first, so a missing
or incomplete directory is one line naming it and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import check_safetensors

# weight files transformers loads (sharded ones come with their index file)
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_FIX = "run its fetch-model rule (snakemake ... models/NAME) or pass the directory of a saved model"


def check_model_dir(path: str | os.PathLike, what: str = "model", weights: bool = True, tokenizer: bool = False) -> str:
    """Return `path` as a string if it is a model directory with a config (and weights / tokenizer files when asked);
    otherwise raise a one-line GrloError naming the directory, the missing file and the fix."""
    p = Path(path)
    if not p.exists():
        raise GrloError(f"{what} directory not found: {_FIX}", path=str(p))
    if not p.is_dir():
        raise GrloError(f"{what} path is not a directory (expected a Hugging Face model directory)", path=str(p))
    if weights and not (p / "config.json").is_file():
        raise GrloError(f"{what} directory has no config.json: {_FIX}", path=str(p))
    if weights and not any((p / name).is_file() for name in _WEIGHTS):
        raise GrloError(f"{what} directory has no weights ({' or '.join(_WEIGHTS[::2])}): {_FIX}", path=str(p))
    if weights:
        for f in sorted(p.glob("*.safetensors")):  # a truncated copy: one line here, not a loader traceback
            check_safetensors(f)
    if tokenizer and not any((p / name).is_file() for name in _TOKENIZER):
        raise GrloError(f"{what} directory has no tokenizer files ({', '.join(_TOKENIZER)}): {_FIX}", path=str(p))
    return str(p)
