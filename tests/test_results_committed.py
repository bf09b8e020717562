"""The committed results/ files equal what their generators write now (so they never go stale), and the workflow
target that rewrites them (`snakemake --cores 1 --forceall committed_results`) runs no GPU job.

Only the provenance lines `date:` and `code:` (when and from which commit) may differ; the config hash may not.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from grlo.cli import main
from grlo.config import REPO_ROOT

RESULTS = REPO_ROOT / "results"
PAPER_CFG = str(REPO_ROOT / "config" / "config.yaml")
REGEN = "make results"  # = snakemake --cores 1 --forceall committed_results
# committed file -> the command its rule runs (paper config); .md twins are written beside the .csv
GENERATORS = {
    "forecast.csv": ["forecast", "--config", PAPER_CFG, "--output"],
    "preview/claims.csv": ["claims", "--config", PAPER_CFG, "--output"],
    "protocol.md": ["protocol-card", "--config", PAPER_CFG, "--output"],
}
VOLATILE = re.compile(r"^(# |> )?(date|code): .*$", flags=re.M)


def normalise(text: str) -> str:
    return VOLATILE.sub(r"\1\2: <volatile>", text)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_committed_file_is_what_the_generator_writes_now(name, tmp_path):
    committed = RESULTS / name
    assert committed.is_file(), f"results/{name} is not committed: run `{REGEN}` and commit it"
    fresh = tmp_path / Path(name).name
    assert main([*GENERATORS[name], str(fresh)]) == 0
    pairs = [(committed, fresh)]
    if committed.suffix == ".csv":
        pairs.append((committed.with_suffix(".md"), fresh.with_suffix(".md")))
    for old, new in pairs:
        assert old.is_file(), f"{old} is not committed: run `{REGEN}`"
        assert normalise(old.read_text(encoding="utf-8")) == normalise(new.read_text(encoding="utf-8")), (
            f"{old.relative_to(REPO_ROOT)} is stale: rerun `{REGEN}` and commit results/")


def test_preview_claims_say_not_run():
    from grlo.report.common import read_results_csv

    header, rows = read_results_csv(RESULTS / "preview" / "claims.csv")
    assert "mode: paper" in header and rows
    assert {r["verdict"] for r in rows} == {"not run"}, "with no run, no claim may have another verdict"


def test_committed_results_target_runs_no_gpu_job():
    """The rules behind the committed files: forecast, claims_preview, protocol_card (none asks for a GPU)."""
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    p = subprocess.run([snakemake, "-n", "--cores", "1", "--forceall", "committed_results"], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-3000:]
    out = p.stdout + p.stderr
    rules = set(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))
    assert rules == {"forecast", "claims_preview", "protocol_card", "committed_results"}, rules
    assert not re.search(r"gpu=[1-9]", out)


def test_committed_results_name_a_clean_commit():
    """The committed results were written from committed code: their `code:` line carries no +dirty."""
    for name in GENERATORS:
        for f in (RESULTS / name, (RESULTS / name).with_suffix(".md")):
            if f.is_file():
                code = [x for x in f.read_text(encoding="utf-8").splitlines() if "code: grlo" in x]
                assert not any("+dirty" in x for x in code), f"{f.relative_to(REPO_ROOT)}: {code}"
