"""Integration: the complete smoke DAG runs offline on CPU in a temporary output directory, and every artifact is
read back (table 1 accuracy from the real SmolLM2 generations, the other tables, claims, figures)."""

import csv
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _read_csv(path: Path) -> list[dict]:
    lines = [l for l in path.read_text().splitlines() if not l.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.mark.integration
def test_smoke_dag_end_to_end(tmp_path):
    snakemake = shutil.which("snakemake") or str(Path(os.sys.executable).parent / "snakemake")
    outdir = tmp_path / "smoke"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    t0 = time.time()
    r = subprocess.run([snakemake, "--cores", "2", "--nolock", "--configfile", "config/smoke.yaml",
                        "--config", f"outdir={outdir}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    wall = time.time() - t0
    if r.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in sorted(outdir.glob("logs/**/*.log"))[-4:])
        pytest.fail(f"smoke DAG failed:\n{r.stderr[-4000:]}\n{logs}")
    print(f"smoke DAG wall time: {wall:.0f}s")
    res = outdir / "results"
    rows = {row["model"]: row for row in _read_csv(res / "table1.csv")}
    score = json.loads((outdir / "scores/qwen3-4b-base--base/math500.json").read_text())
    assert score["n"] >= 10 and 0.0 <= score["value"] <= 100.0
    # the table cell is the score file's accuracy, read back
    assert abs(float(rows["qwen3-4b-base--base"]["math500"]) - score["value"]) < 0.01
    for model in ("qwen3-4b-base--grlo", "qwen3-4b-base--rlvr", "qwen3-4b-base--grlo-rlvr", "qwen3-4b--thinking"):
        assert rows[model]["math500"] != "", model
    samples = (outdir / "scores/qwen3-4b-base--base/math500.samples.jsonl").read_text().splitlines()
    assert len(samples) == score["n"]
    for name in ("table1", "table2", "table3", "table4", "table5", "claims"):
        assert (res / f"{name}.csv").exists() and (res / f"{name}.md").exists(), name
    assert "not comparable" in (res / "claims.csv").read_text()
    assert list((res / "figures").glob("*.png"))
    # snakemake --report: one HTML file with the tables and figures
    report = tmp_path / "report.html"
    r = subprocess.run([snakemake, "--cores", "2", "--nolock", "--configfile", "config/smoke.yaml", "--config", f"outdir={outdir}",
                        "--report", str(report)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and report.stat().st_size > 10_000, r.stderr[-2000:]
    assert not (ROOT / "results" / "table1.csv").exists() or (ROOT / "results" / "table1.csv").stat().st_mtime < t0
