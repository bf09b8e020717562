"""Downloads with checksum verification: written to a temp file, renamed only when the sha256 matches."""

from __future__ import annotations

import logging
import shutil
import urllib.request
from pathlib import Path

from grlo.errors import GrloError
from grlo.io import atomic_path, sha256_file, verify_sha256

log = logging.getLogger(__name__)


def fetch_url(url: str, dest: str | Path, sha256: str | None, timeout: float = 120.0, key: str | None = None) -> str:
    """Download `url` to `dest` (atomic); verify sha256 if given; return the actual sha256. Errors name the URL and
    the config/registry key of the pin (`key`), never the temp file."""
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise GrloError(f"download failed ({e}): check the URL and the network, then rerun", path=url, field=key) from None
        actual = verify_source_sha256(tmp, sha256, url, key or "sha256")
    log.info("downloaded %s -> %s (sha256 %s)", url, dest, actual)
    return actual


def verify_source_sha256(path: str | Path, expected: str | None, source: str, key: str) -> str:
    """sha256 of a downloaded file against its pin; a mismatch names the source (URL / repo@revision file) and the
    key that pins it, not the (temporary or cache) path."""
    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise GrloError(f"checksum mismatch for {source}: expected {expected}, got {actual} (the source changed or the "
                        "download is corrupt: check the source, then fix the pin)", field=key)
    return actual


def copy_verified(src: str | Path, dest: str | Path, sha256: str | None) -> str:
    src = Path(src)
    if not src.is_file():
        raise GrloError("file not found", path=str(src))
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        actual = verify_sha256(tmp, sha256, what="sha256")
    return actual


def hub_error(e: Exception, repo: str, file: str | None, key: str, repo_type: str = "model") -> GrloError | None:
    """One line for a Hugging Face hub failure: the source, the file and what to do (None: not a hub/network error)."""
    from huggingface_hub import errors as E  # optional: huggingface_hub

    page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo}"
    what = f"{repo_type} {repo}" + (f" file {file}" if file else "")
    if isinstance(e, E.GatedRepoError):
        msg = (f"{what}: the repository is gated: accept its terms at {page} with your account, then "
               "`huggingface-cli login` (or set HF_TOKEN) and rerun")
    elif isinstance(e, E.RepositoryNotFoundError):
        msg = f"{what}: repository not found on the hub (check the repo id; private or gated repos need HF_TOKEN)"
    elif isinstance(e, E.RevisionNotFoundError):
        msg = f"{what}: revision not found (check the pinned revision or the lock file entry)"
    elif isinstance(e, E.LocalEntryNotFoundError):
        msg = (f"{what}: not in the local cache and the hub is unreachable (offline, HF_HUB_OFFLINE=1 or no network): "
               "connect and rerun, or pre-fill the HF cache")
    elif isinstance(e, E.EntryNotFoundError):
        msg = f"{what}: the file does not exist at this revision (see {page}/tree/main and fix the file name)"
    elif isinstance(e, E.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        msg = f"{what}: hub request failed (HTTP {status}): retry later or check your token"
    elif isinstance(e, (OSError, ConnectionError, TimeoutError)) or type(e).__module__.startswith(("requests", "httpx", "urllib3")):
        msg = f"{what}: network error ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}): check the connection and rerun"
    else:
        return None
    return GrloError(msg, field=key)
