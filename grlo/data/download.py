"""Downloads with checksum verification: written to a temp file, renamed only when the sha256 matches."""

from __future__ import annotations

import logging
import shutil
import urllib.request
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import atomic_path, verify_sha256

log = logging.getLogger(__name__)


def fetch_url(url: str, dest: str | Path, sha256: str | None, timeout: float = 120.0) -> str:
    """Download `url` to `dest` (atomic); verify sha256 if given; return the actual sha256."""
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise GrloError(f"download failed: {e}", path=url) from None
        actual = verify_sha256(tmp, sha256, what=f"sha256 of {url}")
    log.info("downloaded %s -> %s (sha256 %s)", url, dest, actual)
    return actual


def copy_verified(src: str | Path, dest: str | Path, sha256: str | None) -> str:
    src = Path(src)
    if not src.is_file():
        raise GrloError("file not found", path=str(src))
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        actual = verify_sha256(tmp, sha256, what="sha256")
    return actual
