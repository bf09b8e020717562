"""Resume `grlo generate` per benchmark after a kill (a SLURM time limit, a preempted node).

One generate job writes every benchmark of a model. Snakemake deletes a failed job's declared outputs before it
retries, so each finished benchmark (its .jsonl and .meta.json, in the order written) is also kept in
`<output-dir>/.resume/`, which is no declared output, under a fingerprint of everything that decides its content
(model, model directory and its manifest, sampling, chat settings, prefill, the problem ids). A retry restores each
benchmark whose fingerprint matches and generates only the rest; a changed setting or model regenerates. The directory
goes once the job has written every benchmark.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from grlo.io import write_text

DIR = ".resume"


def fingerprint(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class Resume:
    def __init__(self, output_dir: str | Path):
        self.out = Path(output_dir)
        self.dir = self.out / DIR
        self.restored: list[str] = []

    def _files(self, bench: str) -> list[str]:
        return [f"{bench}.jsonl", f"{bench}.meta.json"]

    def restore(self, bench: str, fp: str) -> bool:
        """Put a finished benchmark back as output when its fingerprint matches; False: generate it."""
        keep = self.dir / bench
        try:
            if (keep / "fingerprint").read_text(encoding="utf-8").strip() != fp:
                return False
        except OSError:
            return False
        if not all((keep / f).is_file() for f in self._files(bench)):
            return False
        self.out.mkdir(parents=True, exist_ok=True)
        for f in self._files(bench):
            write_text(self.out / f, (keep / f).read_text(encoding="utf-8"))
        self.restored.append(bench)
        return True

    def save(self, bench: str, fp: str) -> None:
        """Keep a copy of a benchmark just written (the fingerprint last: a copy without it is never restored)."""
        keep = self.dir / bench
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "fingerprint").unlink(missing_ok=True)
        for f in self._files(bench):
            write_text(keep / f, (self.out / f).read_text(encoding="utf-8"))
        write_text(keep / "fingerprint", fp + "\n")

    def finish(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
