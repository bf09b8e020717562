"""Shared fixtures. `smoke_outdir`: the smoke DAG, run once per session, killed in the middle of GRLO training and
restarted with the same command (fault injection), then its HTML report built as `make smoke` does."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Tests run beside each other (pytest-xdist, the smoke DAG's jobs, verl's Ray workers): a torch thread pool must not
# spin while its other thread waits for a core (Makefile: `make test` sets it before any torch is loaded).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# tests/verl_env/ imports verl (0.6.1) and runs in its own venv (`make verl-venv`; `make test` runs
# `.venv-verl/bin/python -m pytest tests/verl_env`): verl's Hydra/OmegaConf need antlr4 4.9, lm-eval[math] in the main
# venv needs 4.11, so the two cannot share one environment. The main suite, where verl is not installed, skips it.
collect_ignore = [] if all(importlib.util.find_spec(m) for m in ("hydra", "omegaconf", "verl")) else ["verl_env"]
PAPER, SMOKE = ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"


@pytest.fixture(autouse=True)
def _working_directory_is_left_as_found():
    """A test that leaves the process in another directory (worse: a deleted one) breaks every later test that uses
    a relative path, far from its cause; fail the test that did it, and put the directory back."""
    before = os.getcwd()
    yield
    try:
        after = os.getcwd()
    except OSError:
        after = None
    if after != before:
        os.chdir(before)
        pytest.fail(f"the test left the working directory at {after or 'a deleted directory'} (was {before})")
DAG_TIMEOUT_S = 2400  # a loaded 2-core machine


def smoke_config() -> dict:
    from grlo import config as C

    return C.load([PAPER, SMOKE])


def snakemake_env() -> dict:
    bindir = Path(os.sys.executable).parent
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PATH": f"{bindir}:{os.environ['PATH']}"}


def snakemake_cmd(outdir: Path, overlay: Path | None, *extra: str) -> list[str]:
    """The user's command (`make smoke`), with the output directory (and the test's overlay) added."""
    snakemake = shutil.which("snakemake") or str(Path(os.sys.executable).parent / "snakemake")
    configs = [str(SMOKE)] + ([str(overlay)] if overlay else [])
    # targets and flags first: everything after --config is read as key=value
    return [snakemake, *extra, "--cores", "2", "--nolock", "--configfile", *configs, "--config", f"outdir={outdir}"]


def checkpoint_overlay(cfg: dict, dest: Path) -> Path | None:
    """The kill needs a checkpoint inside the run: if the smoke cadence writes none before the last step, save one
    step before the end (the same overlay is given to the uninterrupted reference run)."""
    g = cfg["grlo"]
    cadence = (g.get("verl") or {}) if g.get("engine") == "verl" else g  # grlo.verl.save_freq is verl's own
    total, freq = int(g["total_training_steps"]), int(cadence.get("save_freq") or -1)
    if 0 < freq < total:
        return None
    every = max(1, total - 1)
    dest.write_text(yaml.safe_dump({"grlo": {"save_freq": every, "verl": {"save_freq": every}}}))
    return dest


def grlo_train_dir(outdir: Path, cfg: dict) -> Path:
    return outdir / "checkpoints" / cfg["backbones"]["primary"] / "grlo"


def checkpoint_in(train: Path) -> str | None:
    """train_grlo's last complete checkpoint: native `checkpoints/step_N/state.json`; verl writes its tracker file
    after the step's checkpoint (`verl/checkpoints/latest_checkpointed_iteration.txt`), grlo then its checksums."""
    native = sorted(p.parent.name for p in train.glob("checkpoints/step_*/state.json"))
    if native:
        return native[-1]
    tracker = train / "verl" / "checkpoints" / "latest_checkpointed_iteration.txt"
    step = tracker.read_text().strip() if tracker.exists() else ""
    sealed = step.isdigit() and (tracker.parent / f"global_step_{step}" / "grlo_checksums.json").exists()
    return f"global_step_{step}" if sealed else None  # (grlo.train.verl.seal: its sha256s written after verl's save)


def _failure(outdir: Path, what: str, stderr: str) -> str:
    logs = "\n".join(f"== {p}\n{p.read_text(errors='replace')[-1500:]}"
                     for p in sorted(outdir.glob("logs/**/*.log"), key=lambda p: p.stat().st_mtime)[-4:])
    return f"{what}:\n{stderr[-4000:]}\n{logs}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _stop_group(proc: subprocess.Popen, grace_s: float = 120.0) -> str:
    """SIGTERM to snakemake's whole process group (what SLURM sends on cancel: the trainer may save a checkpoint);
    SIGKILL whatever is still running after `grace_s`."""
    os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline and (proc.poll() is None or _group_alive(proc.pid)):
        time.sleep(0.5)
    how = "SIGTERM"
    if proc.poll() is None or _group_alive(proc.pid):
        how = "SIGTERM+SIGKILL"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return how


def run_fault_injected(outdir: Path, overlay: Path | None, cfg: dict) -> dict:
    """Start the DAG, wait for train_grlo's first complete checkpoint, kill the run, restart it with the same
    command + --rerun-incomplete, let it finish. Returns what happened (written to outdir/fault_injection.json)."""
    env, cmd = snakemake_env(), snakemake_cmd(outdir, overlay)
    train = grlo_train_dir(outdir, cfg)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(outdir.parent / "first_attempt.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while proc.poll() is None and time.time() - t0 < DAG_TIMEOUT_S:
                if checkpoint_in(train):
                    break
                time.sleep(0.5)
            if proc.poll() is not None or not checkpoint_in(train):
                pytest.fail(_failure(outdir, f"smoke DAG ended (rc {proc.returncode}) or timed out before train_grlo "
                                     f"wrote a checkpoint", (outdir.parent / "first_attempt.log").read_text()))
            final_before_kill = (train / "final").exists()
            checkpoint = checkpoint_in(train)
            how = _stop_group(proc)
        finally:
            if proc.poll() is None:
                _stop_group(proc, grace_s=5)
    t_kill = time.time() - t0
    r = subprocess.run(cmd + ["--rerun-incomplete"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=DAG_TIMEOUT_S)
    if r.returncode != 0:
        pytest.fail(_failure(outdir, "smoke DAG failed after the restart", r.stderr))
    train_log = outdir / "logs" / "train_grlo" / f"{cfg['backbones']['primary']}.log"
    record = {"killed_after_s": round(t_kill, 1), "signal": how, "checkpoint_at_kill": checkpoint,
              "final_existed_at_kill": final_before_kill, "wall_s": round(time.time() - t0, 1),
              "resumed": "resumed from" in train_log.read_text(errors="replace"), "overlay": str(overlay or "")}
    (outdir / "fault_injection.json").write_text(json.dumps(record, indent=2))
    return record


def _build_smoke_outdir(base: Path) -> Path:
    cfg = smoke_config()
    outdir = base / "smoke"
    overlay = checkpoint_overlay(cfg, base / "overlay.yaml")
    record = run_fault_injected(outdir, overlay, cfg)
    print(f"fault-injected smoke DAG: {record}")
    r = subprocess.run(snakemake_cmd(outdir, overlay, "--report", str(outdir / "report.html")), cwd=ROOT,
                       env=snakemake_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return outdir


@pytest.fixture(scope="session")
def smoke_outdir(tmp_path_factory) -> Path:
    """The finished smoke outdir (fault-injected run; `report.html` inside it). GRLO_TEST_SMOKE_OUTDIR reuses an
    outdir this fixture finished before (development only: it must hold fault_injection.json).

    One run per pytest invocation, also under pytest-xdist (`make test` runs two workers), where each worker has its
    own session: the first worker to ask builds it under a lock in the run's shared temp directory, the others wait
    on the lock and read the same outdir; a failed build is recorded there, so they fail with its cause instead of
    running the DAG again."""
    reuse = os.environ.get("GRLO_TEST_SMOKE_OUTDIR")
    if reuse:
        outdir = Path(reuse).resolve()
        assert (outdir / "fault_injection.json").exists() and (outdir / "report.html").exists(), reuse
        return outdir
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # pytest-N/, the parent of every worker's popen-gwK/
    base = shared / "smoke_run"
    done, failed = base / "BUILT", base / "FAILED"
    with open(shared / "smoke_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(f"the session's smoke run failed in another worker:\n{failed.read_text()}", pytrace=False)
        if not done.exists():
            base.mkdir(exist_ok=True)
            try:
                _build_smoke_outdir(base)
            except BaseException as e:  # pytest.fail's Failed and a timeout's exceptions included
                failed.write_text(f"{type(e).__name__}: {str(e)[-6000:]}")
                raise
            done.touch()
    return base / "smoke"


def pytest_collection_modifyitems(config, items):
    """The tests that read the smoke run go first: the smoke DAG is the suite's longest single piece of work, so it
    starts at once (under pytest-xdist's `worksteal`, in the first worker, while the second runs the rest and steals
    from it). Among them, the fault-injection comparison (a second training run) first and the other engine's
    training run last, so the two land in different workers' halves."""
    def rank(item) -> tuple[int, int]:
        if "smoke_outdir" not in getattr(item, "fixturenames", ()):
            return (1, 0)
        name = item.name
        return (0, 0 if "restarted_equals_uninterrupted" in name else 2 if "native_engine" in name else 1)

    items.sort(key=rank)  # stable: collection order otherwise


def smoke_overlay(outdir: Path) -> Path | None:
    """The overlay the fault-injected run used (the reference run must use the same config)."""
    rec = json.loads((outdir / "fault_injection.json").read_text())
    return Path(rec["overlay"]) if rec.get("overlay") else None


@pytest.fixture(autouse=True)
def _fresh_verl_custom_reward_module():
    """verl 0.6.1 caches a custom reward file as sys.modules["custom_module"] (verl/trainer/ppo/reward.py), whatever
    its path: right in a trainer process, which loads one file, wrong across tests that load several (our GRLO
    plugin, the RLVR reward). Each test starts and ends without it."""
    sys.modules.pop("custom_module", None)
    yield
    sys.modules.pop("custom_module", None)

