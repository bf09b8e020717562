"""The verl engine's host side (no verl needed): metrics conversion across resumed attempts, the nnodes > 1 Ray launch
in the dry run, the merge step's checks, and the engine switch (native dry run = the native launch)."""

import contextlib
import io
import json
import logging
from pathlib import Path

import pytest

from grlo import cli
from grlo.errors import GrloError
from grlo.report.figures import COMPONENT, MULTI_PANELS, PANELS, series
from grlo.train.verl import finalize as F
from grlo.train.verl import launch as L
from grlo.train.verl import seal
from grlo.train.verl import metrics as M

ROOT = Path(__file__).resolve().parent.parent
PAPER = str(ROOT / "config" / "config.yaml")


def verl_step(step: int, epoch: int, score: float) -> dict:
    return {"step": step, "data": {"training/global_step": step, "training/epoch": epoch, "critic/score/mean": score,
                                   "critic/vf_loss": 0.5, "actor/pg_loss": -0.1, "actor/ppo_kl": 0.01,
                                   "actor/entropy": 1.2, "response_length/mean": 100.0 + step,
                                   "actor/pg_clipfrac": 0.02, "response_length/clip_ratio": 0.1,
                                   "actor/grad_norm": 0.7, "critic/grad_norm": 3.0,
                                   "timing_s/step": 10.0, "timing_s/old_log_prob": 1.0, "timing_s/values": 2.0,
                                   "perf/total_num_tokens": 5000, "critic/advantages/mean": 0.0,
                                   "perf/max_memory_allocated_gb": 40.0}}


def val_row(step: int) -> dict:
    return {"step": step, "data": {"val-core/grlo/reward/mean@1": 0.3 + step}}


def reward_row(split: str, score: float) -> dict:
    return {"split": split, "reward/score_mean": score, "reward/rm_mean": score + 1, "reward/truncated_mean": 0.1,
            "reward/repetition_mean": 0.0, "reward/length_mean": 0.2}


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_metrics_of_two_attempts_merge_into_our_schema(tmp_path):
    logs = tmp_path / "verl" / "logs"
    assert M.next_attempt(logs) == 1
    # attempt 1: validation before training, steps 1-3, then a crash (last checkpoint: step 2)
    m1, r1 = M.attempt_paths(logs, 1)
    write(m1, [val_row(0), verl_step(1, 0, 1.0), verl_step(2, 0, 2.0), verl_step(3, 1, 3.0)])
    write(r1, [reward_row("val", 0.3), reward_row("train", 1.0), reward_row("train", 2.0), reward_row("train", 3.0)])
    assert M.next_attempt(logs) == 2
    # attempt 2 resumes at step 3: validates again at step 2 (val_before_train), redoes step 3, runs step 4; verl
    # 0.6.1's epoch loop restarts at 0 after a resume, so its training/epoch says 0 for steps of epoch 1
    m2, r2 = M.attempt_paths(logs, 2)
    write(m2, [val_row(2), verl_step(3, 0, 3.5), verl_step(4, 0, 4.0)])
    with open(m1, "a") as f:  # attempt 1 was killed in the middle of writing a row
        f.write('{"step": 4, "data": {"training/glo')
    write(r2, [reward_row("val", 2.3), reward_row("train", 3.5), reward_row("train", 4.0)])

    out = tmp_path / "metrics.jsonl"
    assert M.write_metrics(logs, out, batches_per_epoch=2) == 5
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    by = {r["step"]: r for r in rows}
    assert by[3]["reward/score_mean"] == 3.5 and by[3]["reward/rm_mean"] == 4.5  # the repeated step: attempt 2's
    assert by[1]["epoch"] == 0 and by[3]["epoch"] == 1 and by[4]["epoch"] == 1 and by[4]["batch_in_epoch"] == 1
    assert by[1]["time/values_logprobs"] == 3.0 and by[1]["time/step"] == 10.0 and by[1]["perf/tokens_per_s"] == 500
    assert by[1]["gpu/max_memory_allocated_gb"] == 40.0 and by[1]["critic/advantages/mean"] == 0.0
    assert by[0]["val/reward/score_mean"] == 0.3 and by[2]["val/reward/score_mean"] == 2.3
    assert by[2]["val-core/grlo/reward/mean@1"] == 2.3 and by[2]["reward/score_mean"] == 2.0  # attempt 1's train step 2
    # the figures read every panel from the converted rows
    for panel, names in [*PANELS.items(), *((f"{p}/{k}", n) for p, d in MULTI_PANELS.items() for k, n in d.items())]:
        name, steps, _ = series(rows, names)
        assert name and steps[-1] == 4, panel
    assert {m["a"] for r in rows for k in r if (m := COMPONENT.match(k)) and m["a"]} >= {"rm", "truncated",
                                                                                       "repetition", "length"}


def dry_run(*extra: str, tmp_path: Path) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["train-grlo", "--config", PAPER, *extra, "--backbone", "qwen3-4b-base", "--dry-run",
                       "--output-dir", str(tmp_path / "out"), "--prompts", str(tmp_path / "none.jsonl")])
    assert rc == 0
    return buf.getvalue()


def test_multinode_dry_run_renders_the_ray_launch(tmp_path):
    overlay = tmp_path / "two.yaml"
    overlay.write_text("grlo: {nnodes: 2}\n")
    text = dry_run(str(overlay), tmp_path=tmp_path)
    assert "trainer.nnodes=2" in text and "trainer.n_gpus_per_node=4" in text
    assert "ray start --head --node-ip-address=$HEAD_IP --port=6379 --num-gpus=4" in text.replace("'", "")
    workers = next(line for line in text.splitlines() if line.startswith("# workers"))
    # a step inside the job's allocation (--overlap) that asks for the node's GPUs
    assert ("srun --overlap --nodes=1 --ntasks=1 --ntasks-per-node=1 --gpus-per-node=4 --exclude=$HEAD_NODE"
            in workers.replace("'", ""))
    # the file logger's path reaches the TaskRunner wherever Ray places it (runtime_env), not only main_ppo's env
    assert "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH=" in text
    assert "--address=$HEAD_IP:6379" in workers.replace("'", "")
    assert "apptainer exec --nv docker://ghcr.io/grlo-repro/grlo-verl" in workers
    assert "RAY_ADDRESS=$HEAD_IP:6379" in text
    # 8 GPUs x lcm(16, 32) = 256 per mini-batch: 1,000 prompts hold no 4 x 256; the shared rule falls back to one
    # optimizer step per batch of 768
    assert "data.train_batch_size=768" in text and "actor_rollout_ref.actor.ppo_mini_batch_size=768" in text


def test_ray_plan_and_single_node_refusal():
    p = L.plan(3, 8, 6380, "node1", None, head_ip="10.0.0.1")
    assert p.workers[:5] == ["srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"]
    assert "--exclude=node1" in p.workers and "--gpus-per-node=8" in p.workers
    assert "--node-ip-address=10.0.0.1" in p.head and "--address=10.0.0.1:6380" in p.workers
    assert p.wait[-2:] == ["24", "600"] and p.env == {"RAY_ADDRESS": "10.0.0.1:6380"}
    with pytest.raises(GrloError, match="nnodes"):
        L.plan(1, 8, 6379, "h", None)


def test_verl_on_a_machine_without_the_gpus_is_one_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("GPUs visible")
    with pytest.raises(GrloError, match="grlo.engine: native"):
        L.run_verl(["true"], {}, 1, 4, 6379, None)


def test_a_rollout_other_than_vllm_on_gpu_is_refused_before_launch(tmp_path):
    overlay = tmp_path / "hf.yaml"
    overlay.write_text("grlo: {rollout: {engine: hf}}\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(["train-grlo", "--config", PAPER, str(overlay), "--backbone", "qwen3-4b-base", "--dry-run",
                       "--output-dir", str(tmp_path / "out"), "--prompts", str(tmp_path / "none.jsonl")])
    assert rc != 0 and "grlo.rollout.engine" in err.getvalue() and "vllm" in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_native_engine_dry_run_is_the_native_launch(tmp_path):
    overlay = tmp_path / "native.yaml"
    overlay.write_text("grlo: {engine: native}\n")
    text = dry_run(str(overlay), tmp_path=tmp_path)
    assert text.startswith("torchrun") and "--nproc_per_node=4" in text and "verl.trainer" not in text


def test_finalize_takes_verls_own_final_step(tmp_path):
    """The final step is the one verl finished at (main_ppo exited 0), not our planned count: a run whose
    filter_overlong_prompts dropped a batch finalises at its own last step instead of resuming one step further on
    every rerun."""
    ck = tmp_path / "ck"
    with pytest.raises(GrloError, match="no checkpoint"):
        F.finalize(ck, tmp_path / "out", "policy", {})
    ck.mkdir()
    (ck / F.TRACKER).write_text("10")
    with pytest.raises(GrloError, match="has not finished"):  # killed at step 10: resume, do not merge
        F.finalize(ck, tmp_path / "out", "policy", {})
    assert F.finished_step(ck) is None
    assert F.mark_finished(ck, planned_steps=15) == 10  # verl exited 0 at step 10 (planned 15)
    assert F.finished_step(ck) == 10
    (ck / F.TRACKER).write_text("12")  # a later checkpoint: the record no longer holds
    assert F.finished_step(ck) is None
    assert F.merge_command(F.actor_dir(ck, 15), "/t", python="py") == [
        "py", "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(ck / "global_step_15" / "actor"),
        "--target_dir", "/t"]


def test_every_declared_deviation_is_documented():
    from grlo.train.verl.overrides import DEVIATION_REASONS

    doc = (ROOT / "docs" / "grlo_ppo.md").read_text()
    assert [k for k in DEVIATION_REASONS if f"`{k}`" not in doc] == []


def test_a_bad_line_inside_a_log_is_an_error(tmp_path):
    m, _ = M.attempt_paths(tmp_path, 1)
    m.write_text('{"step": 1, "data": {}}\nnot json\n{"step": 2, "data": {}}\n')
    with pytest.raises(GrloError, match=r"attempt-1\.metrics\.jsonl: line 2"):
        M.convert_logs(tmp_path)


def test_finalize_adds_tokenizer_and_manifest_around_the_merger_output(tmp_path):
    """What finalize adds to the merger's output and that a failed merge leaves no final/ (the real merger on a real
    verl checkpoint: tests/verl_env/test_verl_cpu_e2e.py)."""
    from grlo.models.tiny import build_tiny_policy

    policy = build_tiny_policy(tmp_path / "policy", seed=0)
    ck = tmp_path / "ck"
    F.actor_dir(ck, 15).mkdir(parents=True)
    (ck / F.TRACKER).write_text("15\n")
    F.mark_finished(ck)
    calls = []

    class Done:
        returncode = 0

    def fake_merger(cmd, check):  # writes what the merger's output needs here (finalize's own steps are tested)
        calls.append(cmd)
        Path(cmd[cmd.index("--target_dir") + 1], "config.json").write_text("{}")
        return Done()

    final = F.finalize(ck, tmp_path / "out", str(policy), {"stage": "grlo"}, run=fake_merger)
    assert calls[0][calls[0].index("--local_dir") + 1] == str(F.actor_dir(ck, 15))
    man = json.loads((final / "manifest.json").read_text())
    assert man["steps"] == 15 and man["engine"] == "verl" and man["stage"] == "grlo"
    assert (final / "config.json").exists() and (final / "tokenizer_config.json").exists()

    class Failed:
        returncode = 1

    with pytest.raises(GrloError, match="merger failed"):
        F.finalize(ck, tmp_path / "out2", str(policy), {}, run=lambda cmd, check: Failed())
    assert not (tmp_path / "out2" / "final").exists()


def test_dry_run_stdout_is_the_command_and_its_comments(tmp_path):
    """The real CLI process (no verl installed here): stdout holds only `#` lines and the command, which carries
    every train.sh override at train.sh's value or a `# deviation:` line."""
    import os
    import shlex
    import subprocess
    import sys

    from grlo.train.verl.overrides import TRAIN_SH, normalise, same

    r = subprocess.run([sys.executable, "-m", "grlo.cli", "train-grlo", "--config", PAPER, "--backbone",
                        "qwen3-4b-base", "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    cmd_lines = [x for x in lines if not x.startswith("#")]
    assert cmd_lines[0] == "python3 \\" and all(x.startswith("    ") for x in cmd_lines[1:])
    args = shlex.split(" ".join(x.rstrip("\\").strip() for x in cmd_lines))
    given = dict(a.split("=", 1) for a in args[3:])
    devs = {x.split(": ")[1] for x in lines if x.startswith("# deviation: ")}
    assert len(TRAIN_SH) == 46
    for key, value in TRAIN_SH:
        assert key in given and (key in devs or same(normalise(given[key]), normalise(value))), key
    assert any(x.startswith("# batch adapted") for x in lines)


def test_a_rerun_launches_verl_once_and_says_it_resumed(tmp_path, caplog):
    """The verl run step (grlo/train/verl/run.py): a rerun over a checkpoint says it resumes (the restart's log is
    what a reviewer and the smoke fault-injection test read), a first run does not, and a finished run is not
    launched again."""
    import logging
    from types import SimpleNamespace

    from grlo.train.verl import run as R

    ck = tmp_path / "ck"
    ck.mkdir()
    calls = []
    p = {"paths": SimpleNamespace(checkpoints=str(ck)), "cmd": ["main_ppo"], "env": {"VERL_FILE_LOGGER_PATH": "x"},
         "nnodes": 1, "gpus_per_node": 1, "cpu": False}
    launcher = lambda *a, **k: calls.append(a) or 0  # noqa: E731
    with caplog.at_level(logging.INFO):
        assert R.train(p, 6379, str(tmp_path), run=launcher) == 0
    assert len(calls) == 1 and "resumed from" not in caplog.text
    (ck / "global_step_2" / "actor").mkdir(parents=True)  # a checkpoint verl saved (and grlo sealed)
    (ck / "global_step_2" / "actor" / "model.pt").write_bytes(b"w")
    seal.seal(ck / "global_step_2")
    (ck / F.TRACKER).write_text("2")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert R.train(p, 6379, str(tmp_path), run=launcher) == 0
    assert len(calls) == 2 and "resumed from verl's checkpoint at step 2" in caplog.text
    F.mark_finished(ck, planned_steps=3)
    assert R.train(p, 6379, str(tmp_path), run=launcher) == 0 and len(calls) == 2


def test_after_a_verl_run_metrics_are_written_even_on_failure_and_the_finish_is_recorded(tmp_path):
    """train_and_finish (both verl engines): our metrics.jsonl is written after a failed run too, the failure is one
    error line naming the logs, and a run that finished records verl's own final step."""
    from types import SimpleNamespace

    from grlo.train.verl import run as R

    ck = tmp_path / "ck"
    (ck / "global_step_3" / "actor").mkdir(parents=True)  # verl's step-3 checkpoint, sealed
    (ck / "global_step_3" / "actor" / "model.pt").write_bytes(b"w")
    seal.seal(ck / "global_step_3")
    (ck / F.TRACKER).write_text("3")
    written = []
    p = {"paths": SimpleNamespace(checkpoints=str(ck)), "cmd": ["main_ppo"], "env": {"VERL_FILE_LOGGER_PATH": "x"},
         "nnodes": 1, "gpus_per_node": 1, "cpu": False, "logs": str(tmp_path / "logs"), "total_steps": 4}
    with pytest.raises(GrloError, match="exited with 1"):
        R.train_and_finish(p, 6379, str(tmp_path), lambda: written.append(1), run=lambda *a, **k: 1)
    assert written == [1] and F.finished_step(ck) is None
    assert R.train_and_finish(p, 6379, str(tmp_path), lambda: written.append(2), run=lambda *a, **k: 0) == 3
    assert written == [1, 2] and F.finished_step(ck) == 3


def test_verl_cpu_workers_train_on_the_cpus_the_rule_holds(monkeypatch):
    """Ray starts each worker with OMP_NUM_THREADS=1 (torch: one thread); the CPU setup hook gives torch the CPUs the
    process may use, or GRLO_CPU_THREADS (train_rlvr passes its Snakemake threads)."""
    import os

    import torch

    from grlo.train.verl import cpu

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.delenv("GRLO_CPU_THREADS", raising=False)
        cpu._threads()
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
        monkeypatch.setenv("GRLO_CPU_THREADS", "1")
        cpu._threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_an_in_process_dry_run_leaves_the_training_loggers_as_it_found_them(tmp_path):
    """The dry run quiets grlo.train.ppo while it plans (its stdout is the command); a caller in the same process (a
    notebook, the test suite) that trains afterwards still gets the resume and checkpoint lines."""
    ppo = logging.getLogger("grlo.train.ppo")
    before = ppo.level
    dry_run(tmp_path=tmp_path)
    assert ppo.level == before
    ppo.setLevel(logging.DEBUG)
    try:
        dry_run(tmp_path=tmp_path)
        assert ppo.level == logging.DEBUG
    finally:
        ppo.setLevel(before)
