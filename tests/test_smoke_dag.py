"""Integration: the complete smoke DAG runs offline on CPU in a temporary output directory (killed in the middle of GRLO
training, which runs verl 0.6.1's main_ppo on CPU, and restarted, tests/conftest.py smoke_outdir), and every artifact is
read back (table 1 accuracy from the real SmolLM2 generations, the other tables, claims, figures)."""

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _read_csv(path: Path) -> list[dict]:
    lines = [l for l in path.read_text().splitlines() if not l.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.mark.integration
def test_smoke_dag_end_to_end(smoke_outdir):
    outdir = smoke_outdir
    res = outdir / "results"
    rows = {row["model"]: row for row in _read_csv(res / "table1.csv")}
    score = json.loads((outdir / "scores/qwen3-4b-base--base/math500.json").read_text())
    assert score["n"] >= 10 and 0.0 <= score["value"] <= 100.0
    # the table cell is the score file's accuracy, read back
    assert abs(float(rows["qwen3-4b-base--base"]["math500"]) - score["value"]) < 0.01
    for model in ("qwen3-4b-base--grlo", "qwen3-4b-base--rlvr", "qwen3-4b-base--grlo-rlvr", "qwen3-4b--thinking"):
        assert rows[model]["math500"] != "", model
    # the GRLO row trained on the configured engine: smoke mode runs verl's own main_ppo (on CPU), as paper mode does
    from conftest import grlo_train_dir, smoke_config

    cfg = smoke_config()
    manifest = json.loads((grlo_train_dir(outdir, cfg) / "final" / "manifest.json").read_text())
    assert manifest["engine"] == cfg["grlo"]["engine"]
    if cfg["grlo"]["engine"] == "verl":
        train_log = (outdir / "logs" / "train_grlo" / f"{cfg['backbones']['primary']}.log").read_text(errors="replace")
        assert "verl.trainer.main_ppo" in train_log and "Training Progress" in train_log and manifest["cpu"] is True
    # both RLVR stages trained on rlvr.engine (verl in smoke: General-Reasoner's engine, GRPO through main_ppo)
    for stage in ("rlvr", "grlo-rlvr"):
        man = json.loads((grlo_train_dir(outdir, cfg).parent / stage / "final" / "manifest.json").read_text())
        assert (man["engine"], man["stage"]) == (cfg["rlvr"]["engine"], stage)
        if cfg["rlvr"]["engine"] == "verl":
            log = (outdir / "logs" / "train_rlvr" / f"{cfg['backbones']['primary']}.{stage}.log").read_text(
                errors="replace")
            assert "verl.trainer.main_ppo" in log and "algorithm.adv_estimator=grpo" in log and man["cpu"] is True
    samples = (outdir / "scores/qwen3-4b-base--base/math500.samples.jsonl").read_text().splitlines()
    assert len(samples) == score["n"]
    for name in ("table1", "table2", "table3", "table4", "table5", "claims"):
        assert (res / f"{name}.csv").exists() and (res / f"{name}.md").exists(), name
    assert "not comparable" in (res / "claims.csv").read_text()
    assert list((res / "figures").glob("*.png"))
    # snakemake --report (built by the fixture as `make smoke` does): one HTML file with the tables and figures
    assert (outdir / "report.html").stat().st_size > 10_000
    # the committed results/ are never touched by a smoke run
    t0 = (outdir / "fault_injection.json").stat().st_mtime - json.loads((outdir / "fault_injection.json").read_text())["wall_s"]
    assert not (ROOT / "results" / "table1.csv").exists() or (ROOT / "results" / "table1.csv").stat().st_mtime < t0


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _curve(path: Path) -> list[dict]:
    """metrics.jsonl without wall-clock and memory columns (they differ between runs by nature)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    volatile = ("time/", "gpu/", "timing_s/", "timing_per_token_ms/", "perf/")  # native's and verl's
    return [{k: v for k, v in r.items() if not k.startswith(volatile) and not k.endswith("_per_s")} for r in rows]


def _verl_attempts(train: Path) -> list[dict[int, dict]]:
    """verl's own per-attempt logs of a training run: one {step: metrics} per launch, in launch order."""
    logs = train / "verl" / "logs"
    paths = sorted(logs.glob("attempt-*.metrics.jsonl"), key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    out = []
    for p in paths:
        rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        out.append({r["step"]: r["data"] for r in rows if "training/global_step" in r["data"]})
    return out


@pytest.mark.integration
def test_smoke_dag_killed_in_training_resumes_from_its_checkpoint(smoke_outdir):
    """Fault injection: the session's smoke run was killed (SIGTERM to Snakemake's process group, as SLURM cancels)
    after train_grlo's checkpoint and restarted with the same command. The restart is a resume, not a retraining:
    verl's own log of the restarted attempt trains only the steps after the checkpoint, the run's curve has every
    step once, its rows up to the checkpoint are the killed attempt's and the rest the resumed attempt's."""
    from conftest import grlo_train_dir, smoke_config

    rec = json.loads((smoke_outdir / "fault_injection.json").read_text())
    assert rec["final_existed_at_kill"] is False, rec  # the kill really landed inside training
    assert rec["resumed"], rec  # the restarted trainer logged that it continued from the checkpoint
    cfg = smoke_config()
    train = grlo_train_dir(smoke_outdir, cfg)
    total = int(cfg["grlo"]["total_training_steps"])
    curve = {r["step"]: r for r in map(json.loads, (train / "metrics.jsonl").read_text().splitlines()) if "epoch" in r}
    assert sorted(curve) == list(range(1, total + 1))
    assert (train / "final" / "manifest.json").exists()
    if cfg["grlo"]["engine"] != "verl":
        return
    k = int(rec["checkpoint_at_kill"].rsplit("_", 1)[1])
    assert 1 <= k < total, rec
    attempts = _verl_attempts(train)
    assert len(attempts) >= 2, attempts
    first, last = attempts[0], attempts[-1]
    assert min(last) == k + 1 and max(last) == total, (k, sorted(last))  # nothing before the checkpoint trained again
    assert set(range(1, k + 1)) <= set(first)  # the killed attempt trained up to its checkpoint
    for step, row in curve.items():  # which attempt each row of the run's curve came from
        src = first if step <= k else last
        for key in ("actor/pg_loss", "critic/vf_loss", "actor/entropy"):
            assert row[key] == src[step][key], (step, key)


@pytest.mark.slow
@pytest.mark.integration
def test_smoke_dag_killed_in_training_and_restarted_equals_uninterrupted(smoke_outdir, tmp_path):
    """(make test-all) The fault-injected smoke run against an uninterrupted train_grlo on the same prepared inputs:
    the same final weights, bit for bit, and the same training curve. A second CPU training run, so it is kept out of
    `make test`'s budget; there, tests/verl_env/test_verl_cpu_e2e.py asserts the same property on verl's real trainer
    (a SIGKILLed and resumed rehearsal equals an uninterrupted one, metric for metric). (The scores and table 1's GRLO
    row are functions of those weights through the same rules; the generation and scoring steps' own determinism and
    resume are tested in test_generation*.py.)"""
    from conftest import grlo_train_dir, smoke_config, smoke_overlay, snakemake_cmd, snakemake_env

    cfg = smoke_config()
    ref = tmp_path / "reference"
    ref.mkdir()
    for sub in ("models", "data"):  # the same inputs (hard links keep their mtimes: nothing upstream reruns)
        subprocess.run(["cp", "-al", str(smoke_outdir / sub), str(ref / sub)], check=True)
    targets = [str(grlo_train_dir(ref, cfg) / "final")]
    r = subprocess.run(snakemake_cmd(ref, smoke_overlay(smoke_outdir), *targets), cwd=ROOT, env=snakemake_env(),
                       capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "train_grlo" in r.stderr  # trained here, not copied
    # identical final weights
    a, b = grlo_train_dir(smoke_outdir, cfg) / "final", grlo_train_dir(ref, cfg) / "final"
    weights = sorted(p.name for p in a.glob("*.safetensors"))
    assert weights and weights == sorted(p.name for p in b.glob("*.safetensors"))
    for name in weights:
        assert _sha256(a / name) == _sha256(b / name), name
    # the training curve survived the kill (rows before the checkpoint kept) and equals the uninterrupted one
    total = int(cfg["grlo"]["total_training_steps"])
    got_m = _curve(grlo_train_dir(smoke_outdir, cfg) / "metrics.jsonl")
    want_m = _curve(grlo_train_dir(ref, cfg) / "metrics.jsonl")
    assert [r["step"] for r in got_m if "epoch" in r] == list(range(1, total + 1))  # (verl adds a step-0 validation row)
    assert [r["step"] for r in got_m] == [r["step"] for r in want_m]
    for a, b in zip(got_m, want_m):
        # verl 0.6.1 validates again when a resumed run starts (val_before_train): only validation keys may be extra
        # in the restarted run's rows; every metric both logged must be equal, bit for bit
        assert all(k.startswith("val") for k in set(a) ^ set(b)), (a["step"], set(a) ^ set(b))
        assert {k: a[k] for k in set(a) & set(b)} == {k: b[k] for k in set(a) & set(b)}, a["step"]


@pytest.mark.integration
def test_the_other_engines_train_the_grlo_and_grlo_rlvr_rows_in_the_same_dag(smoke_outdir, tmp_path):
    """Smoke mode trains GRLO and both RLVR stages on verl; `grlo.engine: native` (our trainer) and `rlvr.engine: trl`
    (TRL's GRPOTrainer) stay selectable: the same rules, on the smoke run's own prepared inputs, train the GRLO row and
    the GRLO -> RLVR row on top of it with them, and each final/ has a manifest naming its engine."""
    from conftest import grlo_train_dir, smoke_config, snakemake_cmd, snakemake_env

    cfg = smoke_config()
    other = "native" if cfg["grlo"]["engine"] == "verl" else "verl"
    other_rlvr = "trl" if cfg["rlvr"]["engine"] == "verl" else "verl"
    out = tmp_path / "other"
    out.mkdir()
    for sub in ("models", "data"):  # hard links keep mtimes: nothing upstream reruns
        subprocess.run(["cp", "-al", str(smoke_outdir / sub), str(out / sub)], check=True)
    overlay = tmp_path / "engine.yaml"
    overlay.write_text(f"grlo: {{engine: {other}}}\nrlvr: {{engine: {other_rlvr}}}\n")
    final = grlo_train_dir(out, cfg) / "final"
    rlvr_dir = grlo_train_dir(out, cfg).parent / "grlo-rlvr"
    r = subprocess.run(snakemake_cmd(out, overlay, str(rlvr_dir / "final")), cwd=ROOT, env=snakemake_env(),
                       capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "train_grlo" in r.stderr and "train_rlvr" in r.stderr
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["engine"] == other
    steps = [json.loads(x)["step"] for x in (grlo_train_dir(out, cfg) / "metrics.jsonl").read_text().splitlines()
             if x.strip() and "epoch" in json.loads(x)]
    assert steps == list(range(1, int(cfg["grlo"]["total_training_steps"]) + 1))
    rlvr_manifest = json.loads((rlvr_dir / "final" / "manifest.json").read_text())
    assert rlvr_manifest["engine"] == other_rlvr and rlvr_manifest["stage"] == "grlo-rlvr"
    assert Path(rlvr_manifest["init"]).resolve() == final.resolve()  # trained on top of this GRLO row
    rows = [json.loads(x) for x in (rlvr_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert rows and all("reward_mean" in r for r in rows if "rewards/general_reasoner/mean" in r)
