"""`rlvr.engine` (verl | trl): dispatch, the verl plan's step and save conversion, bad input as one line, the verl
parquet rows, the metrics conversion with the TRL engine's names, and the resume fingerprint."""

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from grlo import cli
from grlo import config as C
from grlo.errors import GrloError
from grlo.train import rlvr
from grlo.train.verl import rlvr_launch as L
from grlo.train.verl import rlvr_overrides as RO

PAPER = C.load(["config/config.yaml"])


def test_engine_defaults_and_choice():
    assert rlvr.engine_of(PAPER) == "verl"  # paper default: General-Reasoner's engine
    assert rlvr.engine_of(PAPER, "trl") == "trl"
    cfg = copy.deepcopy(PAPER)
    cfg["rlvr"]["engine"] = "deepspeed"
    with pytest.raises(GrloError, match="rlvr.engine"):
        rlvr.engine_of(cfg)
    assert rlvr.rlvr_image(PAPER, "main") == PAPER["container"]["verl_image"]
    cfg["rlvr"]["engine"] = "trl"
    assert rlvr.rlvr_image(cfg, "main") == "main"


def test_optimizer_steps_become_verl_steps():
    t = rlvr.stage_settings(PAPER, "grlo-rlvr")
    assert RO.verl_steps(t) == {"optimizer_steps_per_verl_step": 4, "total_training_steps": 20, "save_freq": 5}
    with pytest.raises(GrloError, match="rlvr.train.max_steps"):
        RO.verl_steps({**t, "max_steps": 81})
    with pytest.raises(GrloError, match="per_device_batch"):  # 256 x 8 / 8 GPUs = 256, not a multiple of 96
        RO.check_supported({**t, "per_device_batch": 96}, 8)


@pytest.mark.parametrize("rollout", ["hf", "sglang"])
def test_a_rollout_verl_cannot_run_on_gpu_is_refused_before_launch(tmp_path, capsys, rollout):
    """verl 0.6.1 has no HF rollout and the verl image no sglang: on GPU the run would load every model and die."""
    t = rlvr.stage_settings(PAPER, "grlo-rlvr")
    with pytest.raises(GrloError, match="rlvr.verl.rollout"):
        RO.check_supported(t, 8, rollout)
    RO.check_supported(t, 8, "vllm")
    RO.check_supported(t, 8, rollout, cpu=True)  # a CPU run generates with HF whatever the config says
    over = tmp_path / "rollout.yaml"
    over.write_text(f"rlvr:\n  verl: {{rollout: {rollout}}}\n")
    rc = cli.main(["train-rlvr", "--config", "config/config.yaml", str(over), "--backbone", "qwen3-4b-base",
                   "--stage", "grlo-rlvr", "--dry-run"])
    err = capsys.readouterr().err
    assert rc != 0 and "rlvr.verl.rollout" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    smoke = C.load(["config/config.yaml", "config/smoke.yaml", str(over)])  # no GPU: HF generate, no refusal
    assert L.plan(smoke, SimpleNamespace(stage="grlo-rlvr", output_dir=str(tmp_path / "o"), init="i", backbone="b",
                                         data=str(tmp_path / "d.jsonl"), dry_run=True))["cpu"]


def test_bad_config_is_one_line_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rlvr:\n  train:\n    max_steps: 81\n")
    rc = cli.main(["train-rlvr", "--config", "config/config.yaml", str(bad), "--backbone", "b", "--stage", "rlvr",
                   "--dry-run", "--data", str(tmp_path / "missing.jsonl")])
    err = capsys.readouterr().err
    assert rc != 0 and "rlvr.train.max_steps" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_trl_dry_run_prints_its_plan(capsys):
    assert cli.main(["train-rlvr", "--config", "config/config.yaml", "--backbone", "qwen3-4b-base", "--stage",
                     "grlo-rlvr", "--engine", "trl", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# engine: trl" in out and "# GRPOConfig.max_steps = 80" in out
    assert "checkpoints/qwen3-4b-base/grlo/final" in out  # the grlo-rlvr stage starts from GRLO's model


def test_verl_rows_carry_the_prompt_gold_and_question():
    row = {"id": "r1", "prompt": "What is 1+1?", "answer": "2", "meta": {"category": "Mathematics"}}
    v = L.verl_row(row, 3, "Please reason step by step.")
    assert v["prompt"] == [{"role": "user", "content": "What is 1+1? Please reason step by step."}]
    assert v["reward_model"] == {"style": "rule", "ground_truth": "2"}
    assert v["extra_info"] == {"split": "train", "index": 3, "id": "r1", "question": "What is 1+1?"}
    assert rlvr.user_content("q", None) == "q"


def test_metrics_get_the_trl_engines_names(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "attempt-1.metrics.jsonl").write_text(json.dumps(
        {"step": 1, "data": {"training/global_step": 1, "training/epoch": 0, "critic/score/mean": 0.25,
                             "response_length/mean": 20.0, "actor/pg_loss": -0.1, "actor/kl_loss": 0.01}}) + "\n")
    (logs / "attempt-1.reward.jsonl").write_text(json.dumps(
        {"split": "train", "call": 1, "reward/score_mean": 0.25, "reward/correct_mean": 0.5,
         "reward/no_answer_frac": 0.25}) + "\n")
    assert L.write_metrics(logs, tmp_path / "metrics.jsonl", 4) == 1
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row["step"] == 1 and row["reward_mean"] == 0.25 and row["rewards/correct/mean"] == 0.5
    assert row["completion_length_mean"] == 20.0 and row["loss"] == -0.1 and row["kl"] == 0.01
    assert row["rewards/parts/no_answer_frac"] == 0.25


def test_resume_refuses_checkpoints_of_another_recipe_and_fresh_clears_them(tmp_path):
    out = tmp_path / "run"
    ck = out / "verl" / "checkpoints"
    args = SimpleNamespace(init="m", data="d.jsonl", stage="grlo-rlvr", fresh=False)
    t = rlvr.stage_settings(PAPER, "grlo-rlvr")
    p = {"t": t, "rlvr": PAPER["rlvr"], "seed": 0, "paths": SimpleNamespace(checkpoints=str(ck))}
    L.check_resume(out, p, args)  # first run: records its fingerprint
    (ck / "global_step_5").mkdir(parents=True)
    L.check_resume(out, {**p, "t": {**t, "max_steps": 120}}, args)  # a longer budget resumes
    with pytest.raises(GrloError, match="learning_rate") as e:
        L.check_resume(out, {**p, "t": {**t, "learning_rate": 1e-6}}, args)
    assert "set rlvr.fresh: true" in str(e.value) and "grlo.fresh" not in str(e.value)  # this stage's own switch
    L.check_resume(out, {**p, "t": {**t, "learning_rate": 1e-6}}, SimpleNamespace(**{**vars(args), "fresh": True}))
    assert not ck.exists()
    assert json.loads((out / "verl" / "run_fingerprint.json").read_text())["engine"] == "verl"


def test_count_prompts_before_and_after_download(tmp_path):
    data = tmp_path / "train.jsonl"
    assert L.count_prompts(str(data), 20480)[0] == 20480
    with pytest.raises(GrloError, match="download_rlvr_data"):
        L.count_prompts(str(data), None)
    (tmp_path / "stats.json").write_text(json.dumps({"count": 100}))
    assert L.count_prompts(str(data), 50)[0] == 50 and L.count_prompts(str(data), None)[0] == 100
    data.write_text("{}\n" * 7)
    assert L.count_prompts(str(data), 50) == (7, str(data))
    assert Path(data).exists()
