"""Headless Chromium for the report tests: the DOM of a page after its scripts ran, as a reviewer's browser has it.

`make test` installs Chromium from Debian's packages (Makefile target /usr/bin/chromium); without it these tests
are skipped with that instruction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.skip("headless Chromium not installed: `make test` installs it (apt-get install -y chromium)")
    return exe


def dump_dom(url_or_path: str | Path, budget_ms: int = 10000, timeout: int = 120) -> str:
    """document.documentElement.outerHTML after the page's scripts ran (virtual time budget)."""
    url = url_or_path if str(url_or_path).startswith(("file:", "data:", "http")) else Path(url_or_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="grlo-chromium-") as profile:
        p = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
                            "--dump-dom", str(url)], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0 and p.stdout.strip(), f"chromium failed ({p.returncode}): {p.stderr[-2000:]}"
    return p.stdout
