"""`grlo rehearse` when a launch fails: the phase is marked failed in rehearsal.json with main_ppo's own last exception
line, the command prints that one line and exits 1, and no later phase runs. The launch really runs: main_ppo is
started with an interpreter that has no verl (this suite's venv), the way a broken image would fail. (The passing
rehearsal, GRLO then GRLO -> RLVR through verl on CPU, is tests/verl_env/test_verl_cpu_e2e.py.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

from grlo import config as C
from grlo.models.tiny import build_tiny_policy
from grlo.train import rehearse as R

ROOT = Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "config" / "config.yaml")
NO_VERL = {"GRLO_VERL_PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_a_grlo_launch_that_dies_fails_its_phase_in_one_line(tmp_path):
    out = tmp_path / "rehearsal"
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "rehearse", "--config", PAPER, "--backbone", "qwen3-4b-base",
                        "--output", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, **NO_VERL, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("grlo rehearse: phase train failed: ") and "main_ppo ended (exit 1)" in last, last
    assert "No module named 'verl'" in last
    rec = json.loads((out / "rehearsal.json").read_text())
    assert rec["ok"] is False
    assert [(p["phase"], p["ok"]) for p in rec["phases"]] == [("setup", True), ("train", False)]
    assert "No module named 'verl'" in rec["phases"][1]["cause"]
    assert not (out / "final").exists() and not (out / "grlo-rlvr").exists()


def test_a_grlo_rlvr_launch_that_dies_fails_its_phase_with_main_ppos_cause(tmp_path, monkeypatch):
    for k, v in NO_VERL.items():
        monkeypatch.setenv(k, v)
    cfg = R.rehearsal_config(C.load([PAPER]))
    assert R.trains_rlvr_on_verl(cfg)  # the paper's engine for the stage
    build_tiny_policy(tmp_path / "final", seed=0)  # what the GRLO phases leave
    phases = R.Phases(tmp_path / "rehearsal.json")
    try:
        R.rehearse_rlvr(cfg, "qwen3-4b-base", tmp_path, phases)
        raise AssertionError("the phase passed without verl")
    except R.GrloError as e:
        assert "main_ppo exited with 1: " in str(e) and "No module named 'verl'" in str(e), str(e)
    rec = json.loads((tmp_path / "rehearsal.json").read_text())
    assert [(p["phase"], p["ok"]) for p in rec["phases"]] == [("rlvr-train", False)]
    # the launch was real: the stage's data and verl's command were written, its log holds the interpreter's error
    logs = tmp_path / "grlo-rlvr" / "verl" / "logs"
    assert (tmp_path / "grlo-rlvr" / "verl" / "data" / "train.parquet").exists()
    assert "No module named 'verl'" in (logs / "attempt-1.main_ppo.log").read_text()


def test_the_rlvr_phases_follow_the_stage_engine():
    cfg = R.rehearsal_config(C.load([PAPER]))
    assert R.trains_rlvr_on_verl(cfg)
    assert not R.trains_rlvr_on_verl(C.deep_merge(cfg, {"rlvr": {"engine": "trl"}}))
    # only sizes shrink: the paper's learning rate, KL and loss stay
    paper = C.load([PAPER])
    for key in ("learning_rate", "beta", "epsilon", "entropy_coef", "loss_type", "temperature"):
        assert cfg["rlvr"]["train"][key] == paper["rlvr"]["train"][key], key
    assert cfg["rlvr"]["reward"] == paper["rlvr"]["reward"]
