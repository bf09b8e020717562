"""train-rlvr: checkpoint/train path selection, recipe -> TRL mapping, a short GRPO run, GRLO->RLVR, resume."""

import json
from pathlib import Path

import pytest

from grlo import cli
from grlo import config as C
from grlo.errors import GrloError
from grlo.models import ids
from grlo.train import rlvr

REPO = Path(__file__).resolve().parent.parent
PAPER, SMOKE = REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"


# ---------------------------------------------------------------------------------------------- pure functions


def test_model_source_checkpoint_only_for_primary_backbone():
    cfg = C.load([PAPER])
    assert cfg["rlvr"]["mode"] == "checkpoint"  # paper default: evaluate the public General-Reasoner model
    assert ids.rlvr_model_source(cfg, "qwen3-4b-base") == "checkpoint"
    for extra in cfg["backbones"]["extra"]:
        assert ids.rlvr_model_source(cfg, extra) == "train"
    assert ids.rlvr_checkpoint_model(cfg) == "general-reasoner-qwen3-4b"
    smoke = C.load([PAPER, SMOKE])
    assert ids.rlvr_model_source(smoke, "qwen3-4b-base") == "train"
    cfg["rlvr"]["mode"] = "bogus"
    with pytest.raises(GrloError, match="rlvr.mode"):
        ids.rlvr_model_source(cfg, "qwen3-4b-base")


def test_reported_cost_is_consistent_and_sourced():
    cost = rlvr.reported_cost(C.load([PAPER]))
    assert cost["gpus"] == cost["nodes"] * 8
    assert cost["gpu_hours"] == cost["gpus"] * cost["hours"] == 1536
    assert "inferred" in cost["source"] and "2505.14652" in cost["source"]


def test_checkpoint_model_is_in_the_registry():
    import yaml

    reg = yaml.safe_load((REPO / "grlo" / "registry" / "models.yaml").read_text())
    entry = reg[ids.rlvr_checkpoint_model(C.load([PAPER]))]
    assert entry["source"]["paper"]["repo"] == "TIGER-Lab/General-Reasoner-Qwen3-4B"


def test_batch_layout_paper_recipe_on_one_node():
    t = rlvr.stage_settings(C.load([PAPER]), "rlvr")
    lay = rlvr.batch_layout(t, world_size=8)
    # 256 prompts x 8 rollouts per optimizer step over 8 GPUs x 8 completions per micro-batch
    assert lay == {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 256 * 8 // (8 * 8),
                   "generation_batch_size": 1024 * 8, "optimizer_steps_per_generation": 4}
    with pytest.raises(GrloError, match="per_device_batch"):
        rlvr.batch_layout({**t, "per_device_batch": 3}, world_size=8)
    with pytest.raises(GrloError, match="mini_batch_prompts"):
        rlvr.batch_layout({**t, "mini_batch_prompts": 300}, world_size=8)
    with pytest.raises(GrloError, match="at least 2"):
        rlvr.batch_layout({**t, "num_generations": 1}, world_size=1)


def test_stage_overrides_for_grlo_rlvr():
    cfg = C.load([PAPER])
    base, cont = rlvr.stage_settings(cfg, "rlvr"), rlvr.stage_settings(cfg, "grlo-rlvr")
    assert base["max_steps"] is None and cont["max_steps"] == cfg["rlvr"]["stages"]["grlo-rlvr"]["max_steps"]
    assert cont["max_prompts"] == cfg["rlvr"]["stages"]["grlo-rlvr"]["max_prompts"]
    assert cont["learning_rate"] == base["learning_rate"] == 5e-7  # same recipe otherwise
    with pytest.raises(GrloError, match="--stage"):
        rlvr.stage_settings(cfg, "grlo")
    del cfg["rlvr"]["train"]["beta"]
    with pytest.raises(GrloError, match=r"rlvr.train: missing beta"):
        rlvr.stage_settings(cfg, "rlvr")


def test_gpu_kwargs_use_vllm_colocate_bf16_and_deepspeed():
    cfg = C.load([PAPER])
    kw, t, lay = rlvr.grpo_kwargs(cfg, "rlvr", "out", on_gpu=True, world_size=8)
    assert kw["use_vllm"] and kw["vllm_mode"] == "colocate" and kw["bf16"] and "use_cpu" not in kw
    assert kw["deepspeed"]["zero_optimization"]["stage"] == 3
    # General-Reasoner recipe (inferred)
    assert (kw["learning_rate"], kw["beta"], kw["num_generations"], kw["max_completion_length"]) == (5e-7, 1e-4, 8, 8192)
    assert (kw["epsilon"], kw["entropy_coef"], kw["lr_scheduler_type"]) == (0.3, 0.001, "constant")
    assert kw["generation_batch_size"] == 8192 and kw["max_steps"] == -1
    kw1, _, _ = rlvr.grpo_kwargs(cfg, "rlvr", "out", on_gpu=True, world_size=1)
    assert "deepspeed" not in kw1  # one process: no ZeRO


def test_multi_gpu_self_launch_decision_and_command():
    import argparse

    assert rlvr.processes_to_launch(False, 8, 0, {}) == 1  # CPU: never
    assert rlvr.processes_to_launch(True, 8, 8, {}) == 8
    assert rlvr.processes_to_launch(True, 8, 4, {}) == 4  # only the GPUs this job sees
    assert rlvr.processes_to_launch(True, 1, 8, {}) == 1
    assert rlvr.processes_to_launch(True, 8, 8, {"WORLD_SIZE": "32"}) == 1  # already under a launcher
    p = argparse.ArgumentParser()
    rlvr.add_arguments(p)
    args = p.parse_args(["--config", "a.yaml", "b.yaml", "--backbone", "qwen3-4b-base", "--init", "models/x",
                         "--data", "d.jsonl", "--stage", "grlo-rlvr", "--output-dir", "ck", "--device-record", "r.json",
                         "--threads", "3"])
    cmd = rlvr.launch_command(args, 8)
    i = cmd.index("grlo.cli")
    assert cmd[cmd.index("--num_processes") + 1] == "8" and "--multi_gpu" in cmd[:i]
    # the child gets exactly the same train-rlvr arguments, pinned to the TRL engine it was started for
    assert p.parse_args(cmd[i + 2:]) == argparse.Namespace(**{**vars(args), "engine": "trl"})


def test_cpu_config_is_a_valid_grpo_config(tmp_path):
    cfg = C.load([PAPER, SMOKE])
    gc, t, lay = rlvr.build_grpo_config(cfg, "rlvr", tmp_path, on_gpu=False, world_size=1)
    assert gc.use_cpu and not gc.bf16 and not gc.use_vllm
    assert gc.generation_batch_size == t["batch_prompts"] * t["num_generations"]
    assert gc.max_steps == cfg["rlvr"]["stages"]["rlvr"]["max_steps"]
    # the paper recipe passes TRL's own checks: one generation batch feeds 4 optimizer steps
    gp, _, _ = rlvr.build_grpo_config(C.load([PAPER]), "rlvr", tmp_path, on_gpu=False, world_size=1)
    assert gp.generation_batch_size == 8192 and gp.gradient_accumulation_steps == 256
    assert gp.steps_per_generation == 4 * gp.gradient_accumulation_steps


class _WordTok:
    """Counts whitespace-separated words as tokens (enough for the length penalty)."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def test_reward_setup_kinds_and_verifier():
    cfg = C.load([PAPER])
    funcs, weights = rlvr._reward_setup(cfg, _WordTok())
    assert [f.__name__ for f in funcs] == ["general_reasoner", "correct"] and weights == [1.0, 0.0]
    # the length penalty counts the policy tokenizer's tokens: "4.0" is one word like "4" -> no penalty
    # (counting characters would give 1 - 0.05 * 2)
    # math-verify drops the unit, so "4 units" (2 words) matches "4.0" (1 word): penalty 0.05
    out = funcs[0](prompts=[None], completions=["\\boxed{4.0}", "\\boxed{4.0}"], answer=["4", "4 units"])
    assert out == [pytest.approx(1.0), pytest.approx(0.95)]
    cfg["rlvr"]["reward"]["kind"] = "correctness"
    assert rlvr._reward_setup(cfg, _WordTok())[1] == [0.0, 1.0]
    cfg["rlvr"]["reward"]["verifier"] = "general-verifier"
    with pytest.raises(GrloError, match="verifier_path"):
        rlvr._reward_setup(cfg, _WordTok())


def test_metrics_truncation_on_resume(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps({"step": s, "time_s": s * 1.0}) + "\n" for s in (1, 2, 3, 4)))
    assert rlvr.truncate_metrics(p, 2) == 2
    assert [json.loads(x)["step"] for x in p.read_text().splitlines()] == [1, 2]
    assert rlvr._last_time(p) == 2.0
    assert rlvr.truncate_metrics(tmp_path / "missing.jsonl", 3) == 0


# ------------------------------------------------------------------------------------------------ GRPO runs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from grlo.models.tiny import build_tiny_policy

    root = tmp_path_factory.mktemp("rlvr")
    policy = build_tiny_policy(root / "policy", seed=0, hidden_size=32, num_layers=2, num_heads=4)
    over = root / "tiny.yaml"
    over.write_text(
        "rlvr:\n"
        "  engine: trl\n"  # TRL's GRPOTrainer (smoke mode trains on verl: tests/verl_env/test_rlvr_verl_cpu_e2e.py)
        "  data: {fixture: {count: 8, seed: 0}}\n"
        "  train: {max_completion_length: 12, max_prompt_tokens: 256, beta: 1.0e-4, learning_rate: 1.0e-3, save_steps: 1,\n"
        "          keep_checkpoints: true}\n"
        "  stages: {rlvr: {max_steps: 2}, grlo-rlvr: {max_steps: 1, max_prompts: 4}}\n"
    )
    cfgs = [str(PAPER), str(SMOKE), str(over)]
    data = root / "train.jsonl"
    assert cli.main(["download-rlvr-data", "--config", *cfgs, "--output", str(data),
                     "--stats", str(root / "stats.json")]) == 0
    return {"root": root, "policy": policy, "cfgs": cfgs, "data": data}


def _train(s, stage, init, out, extra_cfg=None, resume="auto", *extra_args):
    cfgs = list(s["cfgs"]) + ([str(extra_cfg)] if extra_cfg else [])
    return cli.main(["train-rlvr", "--config", *cfgs, "--backbone", "qwen3-4b-base", "--init", str(init),
                     "--data", str(s["data"]), "--stage", stage, "--output-dir", str(out),
                     "--device-record", str(out.parent / f"{stage}.device.json"), "--resume", resume, *extra_args])


def _rows(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_short_grpo_run_then_grlo_rlvr_and_resume(setup):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    s = setup
    out = s["root"] / "ck" / "rlvr"
    assert _train(s, "rlvr", s["policy"], out) == 0

    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        for key in ("time_s", "reward_mean", "rewards/general_reasoner/mean", "rewards/correct/mean",
                    "rewards/parts/no_answer_frac", "completion_length_mean", "kl", "loss", "grad_norm"):
            assert key in r, key
        # the trained reward is General-Reasoner's: each completion scores -0.5, 0 or 1 - penalty <= 1
        assert -0.5 <= r["reward_mean"] <= 1.0 and 0 < r["completion_length_mean"] <= 12
        assert r["kl"] is not None and r["grad_norm"] > 0
    assert rows[1]["time_s"] >= rows[0]["time_s"]

    final = out / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert tok.chat_template and model.config.vocab_size == len(tok)
    before, after = load_file(s["policy"] / "model.safetensors"), load_file(final / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)  # the optimizer stepped
    man = json.loads((final / "manifest.json").read_text())
    assert (man["engine"], man["stage"], man["global_step"], man["device"], man["use_vllm"]) == (
        "trl", "rlvr", 2, "cpu", False)
    assert man["reward_weights"] == [1.0, 0.0] and man["prompts"] == 8
    dev = json.loads((out.parent / "rlvr.device.json").read_text())
    assert dev["gpu_count"] == 0

    # GRLO -> RLVR: continue from a finished policy (here the rlvr final stands in for grlo/final)
    out2 = s["root"] / "ck" / "grlo-rlvr"
    assert _train(s, "grlo-rlvr", final, out2) == 0
    man2 = json.loads((out2 / "final" / "manifest.json").read_text())
    assert (man2["stage"], man2["init"], man2["prompts"], man2["global_step"]) == ("grlo-rlvr", str(final), 4, 1)
    assert [r["step"] for r in _rows(out2)] == [1]

    # resume: a longer budget continues from checkpoint-2 with the same recipe; metrics have no duplicate steps
    longer = s["root"] / "longer.yaml"
    longer.write_text("rlvr:\n  stages: {rlvr: {max_steps: 3}}\n")
    assert (out / "checkpoint-2").is_dir()
    assert _train(s, "rlvr", s["policy"], out, longer) == 0
    man3 = json.loads((out / "final" / "manifest.json").read_text())
    assert man3["resumed_from"].endswith("checkpoint-2") and man3["global_step"] == 3
    rows3 = _rows(out)
    assert [r["step"] for r in rows3] == [1, 2, 3] and rows3[:2] == rows
    assert rows3[2]["time_s"] >= rows3[1]["time_s"]

    # another recipe (learning rate): resuming its checkpoints is refused in one line naming the key; --fresh
    # removes them and starts over; litter of an earlier kill is removed at the start
    other = s["root"] / "other.yaml"
    other.write_text("rlvr:\n  train: {learning_rate: 2.0e-3, keep_checkpoints: false}\n")
    assert _train(s, "rlvr", s["policy"], out, other) == 2
    assert (out / "checkpoint-3").is_dir()
    (out / ".metrics.jsonl.x1.part").write_text("half")
    assert _train(s, "rlvr", s["policy"], out, other, "auto", "--fresh") == 0
    assert not list(out.glob(".*.part"))
    man4 = json.loads((out / "final" / "manifest.json").read_text())
    assert man4["resumed_from"] is None and man4["global_step"] == 2
    assert [r["step"] for r in _rows(out)] == [1, 2]
    assert not list(out.glob("checkpoint-*"))  # keep_checkpoints: false removes resume state after success


def test_bad_inputs_fail_with_one_line(setup, tmp_path, capsys):
    s = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "prompt": "p", "answer": "1"}) + "\n" + json.dumps({"id": "b"}) + "\n")
    rc = cli.main(["train-rlvr", "--config", *s["cfgs"], "--backbone", "b", "--init", str(s["policy"]),
                   "--data", str(bad), "--stage", "rlvr", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"grlo train-rlvr: error: {bad}: line 2: field 'prompt' must be a non-empty string"]
    rc = cli.main(["train-rlvr", "--config", *s["cfgs"], "--backbone", "b", "--init", str(tmp_path),
                   "--data", str(s["data"]), "--stage", "rlvr", "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "o" / "final").exists()


def test_model_verifier_loads_lazily_and_judges_in_batches(setup):
    from grlo.rewards.general_reasoner import ModelVerifier

    v = ModelVerifier(str(setup["policy"]), max_new_tokens=4, batch_size=2)
    assert v._model is None  # nothing loaded until the first judgement
    verdicts = v.judge(["q1", "q2", "q3"], ["1", "2", "3"], ["1", None, "4"])
    # a random tiny model never writes the pass tag in 4 tokens; three prompts in batches of two
    assert verdicts == [False, False, False] and v._model is not None


def test_resume_refusal_names_the_differing_keys(tmp_path, capsys):
    from grlo.errors import GrloError

    data, init, out = tmp_path / "d.jsonl", tmp_path / "init", tmp_path / "out"
    data.write_text("{}\n")
    init.mkdir()
    (init / "config.json").write_text("{}")
    out.mkdir()
    recipe = {"learning_rate": 1e-6, "beta": 0.0, "max_steps": 10}
    fp = rlvr.run_fingerprint(recipe, str(init), str(data), "rlvr", {"verifier": "math"}, 0)
    (out / "checkpoint-2").mkdir()
    with pytest.raises(GrloError, match="no run fingerprint"):  # checkpoints of an unknown run
        rlvr.check_checkpoints(out, fp)
    (out / "checkpoint-2").rmdir()
    rlvr.check_checkpoints(out, fp)  # first run: records its fingerprint
    (out / "checkpoint-2").mkdir()
    longer = rlvr.run_fingerprint({**recipe, "max_steps": 20}, str(init), str(data), "rlvr", {"verifier": "math"}, 0)
    rlvr.check_checkpoints(out, longer)  # a longer budget resumes
    other = rlvr.run_fingerprint({**recipe, "beta": 0.1}, str(init), str(data), "rlvr", {"verifier": "math"}, 1)
    with pytest.raises(GrloError, match=r"\(rlvr\.train\.beta, run\.seed\).*set rlvr\.fresh: true in your config"):
        rlvr.check_checkpoints(out, other)
    data.write_text("{}\n{}\n")
    changed_data = rlvr.run_fingerprint({**recipe, "max_steps": 20}, str(init), str(data), "rlvr",
                                        {"verifier": "math"}, 0)
    with pytest.raises(GrloError, match=r"inputs\.data"):
        rlvr.check_checkpoints(out, changed_data)
    rlvr.check_checkpoints(out, other, fresh=True)
    assert not (out / "checkpoint-2").exists()


def test_stop_callback_saves_and_stops_after_a_signal():
    from transformers import TrainerControl

    from grlo.train.stopping import StopOnSignal

    stop = StopOnSignal(grace_s=30.0, save_s=0.0)
    cb = rlvr.make_stop_callback(stop)
    control = TrainerControl()
    cb.on_step_begin(None, None, control)
    cb.on_step_end(None, None, control)
    assert not control.should_save and not control.should_training_stop
    stop.signum = 15  # what the SIGTERM handler records
    cb.on_step_end(None, None, control)
    assert control.should_save and control.should_training_stop
