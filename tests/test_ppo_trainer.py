"""The PPO trainer end to end on tiny models: learning, resume equivalence, batch-size checks, CLI, vLLM mapping."""

import json
import random

import pytest
import torch

from grlo import config as config_mod
from grlo.errors import GrloError
from grlo.models.tiny import _WORDS, build_tiny_policy, build_tiny_reward_model
from grlo.train import ppo
from grlo.train.ppo import PPOTrainer, batch_indices, resolve_batch_sizes, response_mask_from

ROOT = config_mod.REPO_ROOT


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppo_models")
    return str(build_tiny_policy(root / "policy", seed=0)), str(build_tiny_reward_model(root / "rm", seed=0))


def write_prompts(path, n, distinct=None, seed=0):
    rng = random.Random(seed)
    pool = [" ".join(rng.choice(_WORDS) for _ in range(6)) for _ in range(distinct or n)]
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"data_source": "ours", "prompt": [{"role": "user", "content": pool[i % len(pool)]}],
                                "ability": "general", "reward_model": {"style": "model", "ground_truth": ""},
                                "extra_info": {"split": "train", "index": i}}) + "\n")
    return str(path)


def tiny_cfg(**grlo):
    cfg = config_mod.load([ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"])
    g = cfg["grlo"]
    g.update({"train_batch_size": 8, "max_response_length": 10, "total_training_steps": 4, "save_freq": -1})
    g["actor"].update({"ppo_mini_batch_size": 4, "ppo_micro_batch_size_per_gpu": 2})
    g["critic"].update({"ppo_mini_batch_size": 4, "ppo_micro_batch_size_per_gpu": 4})
    g["rollout"]["batch_size"] = 8
    for k, v in grlo.items():
        if isinstance(v, dict):
            g[k].update(v)
        else:
            g[k] = v
    config_mod.validate(cfg)
    return cfg


def deterministic(row):
    return {k: v for k, v in row.items() if not k.startswith(ppo.DETERMINISTIC_METRICS_EXCLUDE)}


@pytest.mark.parametrize("steps,lr,window", [
    (12, 2e-2, 3),
    pytest.param(24, 1e-2, 5, marks=pytest.mark.slow),
])
def test_learning_mean_rm_reward_rises(models, tmp_path, steps, lr, window):
    """Pure RM reward, fixed seed: the policy must clearly raise the tiny RM's mean score within a few dozen steps."""
    pol, rm = models
    prompts = write_prompts(tmp_path / "p.jsonl", 16, distinct=2)
    cfg = tiny_cfg(train_batch_size=16, max_response_length=12, total_training_steps=steps,
                   actor={"lr": lr, "ppo_mini_batch_size": 8, "ppo_micro_batch_size_per_gpu": 8},
                   critic={"lr": lr, "ppo_mini_batch_size": 8, "ppo_micro_batch_size_per_gpu": 8},
                   rollout={"batch_size": 16},
                   reward={"style_mix": {"weights": {"rm": 1.0, "truncated": 0.0, "repetition": 0.0, "length": 0.0}}})
    state = PPOTrainer(cfg, "tiny", prompts, pol, rm, str(tmp_path / "out")).train(progress=False)
    r = [m["reward/rm_mean"] for m in state.metrics]
    assert len(r) == steps
    first, last = sum(r[:window]) / window, sum(r[-window:]) / window
    noise = torch.tensor(r[:window]).std().item()
    assert last - first > max(3 * noise, 0.01), r
    assert state.metrics[-1]["actor/entropy"] < state.metrics[0]["actor/entropy"] - 0.3


def test_resume_reproduces_uninterrupted_run(models, tmp_path, monkeypatch):
    pol, rm = models
    prompts = write_prompts(tmp_path / "p.jsonl", 16)
    cfg = tiny_cfg(total_training_steps=4, save_freq=2)  # 16 prompts / 8 = 2 batches per epoch: crosses an epoch
    full = PPOTrainer(cfg, "tiny", prompts, pol, rm, str(tmp_path / "a")).train(progress=False)

    real_step = PPOTrainer.step

    def dying_step(self):
        if self.state.step == 3:  # killed during step 4, after the step-2 checkpoint and the step-3 metrics row
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(PPOTrainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        PPOTrainer(cfg, "tiny", prompts, pol, rm, str(tmp_path / "b")).train(progress=False)
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 3
    assert not (tmp_path / "b" / "final").exists()
    monkeypatch.setattr(PPOTrainer, "step", real_step)
    resumed = PPOTrainer(cfg, "tiny", prompts, pol, rm, str(tmp_path / "b")).train(progress=False)

    rows_b = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]
    assert [deterministic(r) for r in rows_b] == [deterministic(r) for r in full.metrics]
    assert resumed.step == 4
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_batch_larger_than_prompt_set_is_an_error_unless_adapted(caplog):
    g = tiny_cfg(train_batch_size=1024, actor={"ppo_mini_batch_size": 256},
                 critic={"ppo_mini_batch_size": 256})["grlo"]
    g["adapt_batch_size"] = False
    with pytest.raises(GrloError, match=r"train_batch_size 1024 is larger than the 1000 usable prompts.*adapt_batch_size"):
        resolve_batch_sizes(g, 1000, 1, "cfg.yaml")
    g["adapt_batch_size"] = True
    with caplog.at_level("WARNING"):
        bs = resolve_batch_sizes(g, 1000, 4, "cfg.yaml")
    assert bs["train_batch_size"] == 992 and bs["actor_mini"] == 248  # 4 optimizer steps per batch kept, /4 GPUs
    assert bs["adapted"]["train_batch_size"] == [1024, 992]
    assert "adapt_batch_size" in caplog.text


def test_mini_batch_must_divide_batch():
    g = tiny_cfg(train_batch_size=8, actor={"ppo_mini_batch_size": 3})["grlo"]
    with pytest.raises(GrloError, match="ppo_mini_batch_size"):
        resolve_batch_sizes(g, 100, 1)


def test_data_order_is_seeded_and_drops_last_partial_batch():
    e0 = batch_indices(0, 10, 4, seed=0, shuffle=True)
    assert e0[:2] == (0, 0) and len(e0[2]) == 4
    assert batch_indices(2, 10, 4, 0, True)[:2] == (1, 0)  # 10 // 4 = 2 batches per epoch
    seen = batch_indices(0, 10, 4, 0, True)[2] + batch_indices(1, 10, 4, 0, True)[2]
    assert len(set(seen)) == 8
    assert batch_indices(0, 10, 4, 0, False)[2] == [0, 1, 2, 3]


def test_response_mask_stops_after_first_eos():
    r = torch.tensor([[5, 6, 2, 0, 2], [5, 5, 5, 5, 5], [2, 7, 7, 7, 7]])
    assert response_mask_from(r, {2}).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_vllm_settings_mapping():
    g = config_mod.load([ROOT / "config" / "config.yaml"])["grlo"]
    llm, sampling = ppo.vllm_settings(g, "/models/qwen", seed=3, n_procs=4)
    assert llm["gpu_memory_utilization"] == 0.7 and llm["tensor_parallel_size"] == 1
    assert llm["max_model_len"] == 1024 + 3072 and llm["enable_sleep_mode"] is True
    assert llm["distributed_executor_backend"] == "external_launcher"
    assert sampling == {"n": 1, "temperature": 1.0, "top_p": 1.0, "top_k": -1, "max_tokens": 3072,
                        "detokenize": False}


def test_launch_command():
    assert ppo.launch_command(1, ["--x"]) == ["grlo", "train-grlo", "--x"]
    assert ppo.launch_command(4, ["--x"])[:3] == ["torchrun", "--standalone", "--nproc_per_node=4"]


def test_paper_config_mirrors_train_sh():
    g = config_mod.load([ROOT / "config" / "config.yaml"])["grlo"]
    assert (g["train_batch_size"], g["max_prompt_length"], g["max_response_length"]) == (1024, 1024, 3072)
    assert (g["actor"]["lr"], g["actor"]["ppo_mini_batch_size"], g["actor"]["ppo_micro_batch_size_per_gpu"]) == (1e-6, 256, 16)
    assert (g["critic"]["lr"], g["critic"]["ppo_micro_batch_size_per_gpu"]) == (1e-5, 32)
    assert (g["gamma"], g["lam"], g["actor"]["clip_ratio"], g["actor"]["clip_ratio_c"]) == (1.0, 1.0, 0.2, 3.0)
    assert (g["critic"]["cliprange_value"], g["use_kl_loss"], g["use_kl_in_reward"]) == (0.5, False, False)
    assert (g["total_epochs"], g["save_freq"], g["test_freq"], g["n_gpus_per_node"]) == (15, 200, 7, 4)
    assert g["rollout"]["gpu_memory_utilization"] == 0.7 and g["reward"]["param_offload"] is True
    text = (ROOT / "config" / "config.yaml").read_text()
    section = text[text.index("\ngrlo:"):]
    for line in section.splitlines()[3:]:
        if line.strip() and not line.strip().startswith("#") and not line.rstrip().endswith(":"):
            assert "#" in line, f"no source comment: {line}"


def test_cli_smoke_run_writes_final_model(models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grlo.cli import main

    pol, rm = models
    prompts = write_prompts(tmp_path / "p.jsonl", 6)
    over = tmp_path / "over.yaml"
    over.write_text("grlo:\n  total_training_steps: 3\n  max_response_length: 8\n  save_freq: 2\n")
    out = tmp_path / "ckpt"
    rc = main(["train-grlo", "--config", str(ROOT / "config/config.yaml"), str(ROOT / "config/smoke.yaml"), str(over),
               "--engine", "native", "--backbone", "tiny", "--prompts", prompts, "--policy-init", pol, "--reward-model", rm,
               "--output-dir", str(out), "--device-record", str(tmp_path / "dev.json"), "--no-progress"])
    assert rc == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("reward/rm_mean", "reward/truncated_mean", "reward/repetition_mean", "response_length/mean",
                "actor/pg_clipfrac", "actor/ppo_kl", "actor/entropy", "critic/vf_loss", "critic/explained_variance",
                "actor/grad_norm", "critic/grad_norm", "perf/tokens_per_s", "time/generate", "time/reward",
                "time/values_logprobs", "time/update_actor"):
        assert key in rows[-1], key
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    tok = AutoTokenizer.from_pretrained(out / "final")
    assert tok.chat_template and model.config.vocab_size == len(tok)
    assert json.loads((out / "final" / "manifest.json").read_text())["steps"] == 3
    assert json.loads((tmp_path / "dev.json").read_text())["gpu_count"] == 0
    # an oversized batch through the CLI is a one-line error (exit 2) naming the key
    over.write_text("grlo:\n  train_batch_size: 64\n  adapt_batch_size: false\n")
    rc = main(["train-grlo", "--config", str(ROOT / "config/config.yaml"), str(ROOT / "config/smoke.yaml"), str(over),
               "--engine", "native", "--backbone", "tiny", "--prompts", prompts, "--policy-init", pol, "--reward-model", rm,
               "--output-dir", str(tmp_path / "bad"), "--no-progress"])
    assert rc == 2


def test_two_process_fsdp2_cpu_run_and_resume(models, tmp_path):
    """The multi-GPU code path (torchrun, FSDP2 sharding, global whitening, collective checkpoints) on 2 CPU processes:
    SIGTERM to torchrun mid-run (both ranks agree to stop after the step and save), then a rerun resumes and ends with
    the uninterrupted run's metrics."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pol, rm = models
    prompts = write_prompts(tmp_path / "p.jsonl", 16)
    over = tmp_path / "over.yaml"
    over.write_text("grlo:\n  total_training_steps: 6\n  save_freq: -1\n  train_batch_size: 8\n"
                    "  max_response_length: 8\n"
                    "  actor: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 1}\n"
                    "  critic: {ppo_mini_batch_size: 4, ppo_micro_batch_size_per_gpu: 2}\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "grlo.cli",
                "train-grlo", "--config", str(ROOT / "config/config.yaml"), str(ROOT / "config/smoke.yaml"),
                str(over), "--engine", "native", "--backbone", "tiny", "--prompts", prompts, "--policy-init", pol,
                "--reward-model", rm, "--output-dir", str(out), "--no-progress"]

    def rows(out):
        return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]

    subprocess.run(cmd(tmp_path / "ref"), check=True, capture_output=True, timeout=600, env=env)
    ref = rows(tmp_path / "ref")
    assert [r["step"] for r in ref] == [1, 2, 3, 4, 5, 6]
    assert ref[0]["perf/response_tokens"] <= 8 * 8  # summed over both processes' halves of the batch

    out = tmp_path / "dist"
    proc = subprocess.Popen(cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and len((out / "metrics.jsonl").read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks
    assert proc.wait(timeout=300) != 0
    saved = sorted((out / "checkpoints").glob("step_*"))
    assert len(saved) == 1 and not (out / "final").exists()
    subprocess.run(cmd(out), check=True, capture_output=True, timeout=600, env=env)
    assert [deterministic(r) for r in rows(out)] == [deterministic(r) for r in ref]


def test_lr_warmup_ratio_and_critic_warmup_in_the_loop(models, tmp_path):
    """verl: warm-up over int(ratio x total steps) updates, the first at lr 0; critic_warmup 2 skips the actor once."""
    pol, rm = models
    prompts = write_prompts(tmp_path / "p.jsonl", 8)
    cfg = tiny_cfg(total_training_steps=4, critic_warmup=2, actor={"lr_warmup_steps_ratio": 0.5},
                   critic={"lr_warmup_steps_ratio": 0.5})
    tr = PPOTrainer(cfg, "tiny", prompts, pol, rm, str(tmp_path / "out"))
    assert tr.lr_warmup == {"actor": 2, "critic": 2}
    before = [p.detach().clone() for p in tr.actor.parameters()]
    row = tr.step()  # step 1: critic at lr 0 (first warm-up update), actor skipped (critic_warmup 2 > step 1)
    assert "actor/pg_loss" not in row and tr.critic_opt.param_groups[0]["lr"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, tr.actor.parameters()))
    row = tr.step()  # step 2: critic at half its lr, the actor's first update at lr 0
    assert "actor/pg_loss" in row and tr.actor_opt.param_groups[0]["lr"] == 0.0
    assert tr.critic_opt.param_groups[0]["lr"] == pytest.approx(cfg["grlo"]["critic"]["lr"] / 2)
