"""`grlo doctor`: the checklist on this machine (smoke passes, paper fails on the GPU line) and each check against a
faked machine (GPUs, tools, disk, network, tokens, keys, sandbox)."""

from pathlib import Path

import pytest

from grlo import config as C
from grlo import doctor as D
from grlo import workflow as W
from grlo.cli import main
from grlo.config import REPO_ROOT

PAPER = [str(REPO_ROOT / "config" / "config.yaml")]
SMOKE = PAPER + [str(REPO_ROOT / "config" / "smoke.yaml")]
GIB = 1 << 30


class FakeProbe(D.Probe):
    def __init__(self, gpus=(), mem_gib=80, tools=("apptainer",), env=None, free_gib=2000, online=True,
                 token=None, cached=(), denied=(), isolation="namespaces"):
        self._gpus = [{"index": i, "name": "NVIDIA H100", "memory_mib": int(mem_gib * 1024)} for i in range(len(gpus))]
        self.tools, self._env, self.free = set(tools), dict(env or {}), free_gib * GIB
        self.online, self.token, self.cached, self.denied, self.iso = online, token, set(cached), set(denied), isolation

    def gpus(self):
        return self._gpus, "fake NVML"

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.tools else None

    def env(self, name):
        return self._env.get(name)

    def disk_free(self, path):
        return self.free, 1

    def writable(self, path):
        return "readonly" not in str(path)

    def reachable(self, url, timeout=5.0):
        return self.online

    def hf_token(self):
        return self.token

    def hf_cached(self, repo, repo_type, revision=None):
        return repo in self.cached

    def hf_access(self, repo, repo_type, token):
        return "GatedRepoError" if repo in self.denied else None

    def isolation(self):
        return self.iso


def cfg(files=PAPER, **over):
    c = C.load(files)
    return C.deep_merge(c, over) if over else c


def by_status(checks, status):
    return [ch.line() for ch in checks if ch.status == status]


GOOD = dict(gpus=range(8), env={"OPENAI_API_KEY": "sk-x"}, token="hf_x")


def test_paper_config_on_a_full_machine_passes(tmp_path):
    checks = D.doctor(cfg(), FakeProbe(**GOOD), outdir=tmp_path, resources_gpu=8)
    assert not by_status(checks, D.FAIL), by_status(checks, D.FAIL)
    lines = "\n".join(ch.line() for ch in checks)
    assert "[ ok ] GPUs: 8 x NVIDIA H100" in lines and "--resources gpu=8" in lines


def test_rule_gpus_are_read_from_the_workflow_rules():
    """Every `gpu=` resource of the rule files reads grlo.workflow (one plan for the rules and doctor)."""
    import re

    exprs = {m.group(1): m.group(2) for p in (REPO_ROOT / "workflow" / "rules").glob("*.smk")
             for m in re.finditer(r"^rule (\w+):(?:\n(?!rule ).*)*?\n\s+gpu=(.+)$", p.read_text(), flags=re.M)}
    assert {"train_grlo", "train_rlvr", "generate", "lmeval_fewshot", "score"} <= set(exprs)
    assert all("W.rule_gpus(config)" in e or "GRLO[" in e or "judge_gpus" in e for e in exprs.values()), exprs
    paper = cfg()
    got = D.rule_gpus(paper)
    assert got["train_rlvr"] == paper["rlvr"]["gpus"] == 8
    assert got["generate"] == paper["resources"]["gpus_eval"]
    assert got["train_grlo"] == 4
    assert D.rule_gpus(cfg(rlvr={"gpus": 2}))["train_rlvr"] == 2  # follows the config, as the rule does


def test_no_gpu_fails_with_the_plan():
    checks = D.doctor(cfg(), FakeProbe(gpus=(), env={"OPENAI_API_KEY": "k"}, token="t"), outdir=Path("."),
                      resources_gpu=8)
    fails = by_status(checks, D.FAIL)
    assert len(fails) == 1 and fails[0].startswith("[FAIL] GPUs: no GPU visible") and "train_rlvr 8" in fails[0]


def test_too_few_gpus_and_resources_cap(tmp_path):
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "gpus": range(4)}), outdir=tmp_path, resources_gpu=4)
    fails = "\n".join(by_status(checks, D.FAIL))
    assert "[FAIL] GPUs: 4 x NVIDIA H100" in fails and "the largest rule needs 8" in fails
    assert "[FAIL] --resources gpu=4: train_rlvr needs 8" in fails and "without a word" in fails
    # not given at all: a warning that says what to pass
    checks = D.doctor(cfg(), FakeProbe(**GOOD), outdir=tmp_path)
    assert any("N >= 8" in w for w in by_status(checks, D.WARN))


def test_slurm_login_node_skips_local_gpus(tmp_path):
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "gpus": ()}), outdir=tmp_path, slurm=True)
    assert not by_status(checks, D.FAIL)
    assert any(line.startswith("[skip] GPUs on this machine") for line in by_status(checks, D.SKIP))


def test_gpu_memory_against_the_plan(tmp_path):
    # GRLO: 32 B/param x 4.02e9 / 4 GPUs = 30 GiB per GPU > 24 GiB
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "mem_gib": 24}), outdir=tmp_path, resources_gpu=8)
    fails = by_status(checks, D.FAIL)
    assert any(f.startswith("[FAIL] GPU memory for train_grlo: >= 30.0 GiB of 24 GiB") for f in fails), fails
    plan = {r: gib for r, gib, _, _ in D.memory_plan(cfg(), {"train_grlo": 4, "train_rlvr": 8, "generate": 1})}
    assert plan["train_grlo"] == pytest.approx(32 * 4.02e9 / 4 / GIB)  # RM offloaded in config.yaml
    assert plan["train_rlvr"] == pytest.approx(16 * 4.02e9 / 8 / GIB)
    assert plan["generate"] == pytest.approx(2 * 8.19e9 / GIB)  # the largest evaluated model (Qwen3-8B-Base)


def test_trainer_processes_must_match_the_rule(tmp_path, monkeypatch):
    real = D.rule_gpus
    monkeypatch.setattr(D, "rule_gpus", lambda c, *a: {**real(c), "train_grlo": 4})  # a rule reserving 4 GPUs
    checks = D.doctor(cfg(grlo={"n_gpus_per_node": 2}), FakeProbe(**GOOD), outdir=tmp_path, resources_gpu=8)
    assert any("trainer starts 2 processes" in f and "reserves 4" in f for f in by_status(checks, D.FAIL))


def test_rule_gpus_follow_nodes_cpu_and_the_served_judge():
    assert D.rule_gpus(cfg(grlo={"nnodes": 2}))["train_grlo"] == 8
    assert D.rule_gpus(cfg(grlo={"device": "cpu"}))["train_grlo"] == 0
    served = cfg(evaluation={"judge": {"serve": {"tensor_parallel_size": 2}}})
    assert D.rule_gpus(served)["score"] == 2  # the largest per-benchmark count: AlpacaEval's served judge
    assert D.rule_gpus(cfg())["score"] == 0
    assert set(D.rule_gpus({}).values()) == {None}  # cannot be computed: reported, never guessed



def test_container_checks(tmp_path):
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "tools": ()}), outdir=tmp_path, resources_gpu=8)
    assert any(f.startswith("[FAIL] apptainer") for f in by_status(checks, D.FAIL))
    assert any("not pinned by a digest (container.image)" in w for w in by_status(checks, D.WARN))
    offline = D.doctor(cfg(), FakeProbe(**{**GOOD, "online": False}), outdir=tmp_path, resources_gpu=8)
    assert any(f.startswith("[FAIL] image registry ghcr.io: unreachable") for f in by_status(offline, D.FAIL))
    sif = tmp_path / "grlo.sif"
    local = cfg(container={"image": str(sif)})
    assert any("missing" in f for f in by_status(D.doctor(local, FakeProbe(**GOOD), outdir=tmp_path), D.FAIL))
    sif.write_text("")
    assert not [f for f in by_status(D.doctor(local, FakeProbe(**GOOD), outdir=tmp_path), D.FAIL) if "image" in f]
    verl = C.deep_merge(cfg(), {"grlo": {"engine": "verl"}, "container": {"verl_image": str(tmp_path / "verl.sif")}})
    assert any(f.startswith(f"[FAIL] image {tmp_path / 'verl.sif'}") and "container.verl_image" in f
               for f in by_status(D.doctor(verl, FakeProbe(**GOOD), outdir=tmp_path), D.FAIL))
    conda = D.doctor(cfg(), FakeProbe(**{**GOOD, "tools": ()}), outdir=tmp_path, sdm="conda")
    assert any(f.startswith("[FAIL] --sdm conda") for f in by_status(conda, D.FAIL))


def test_digest_replaces_the_tag():
    digest = "sha256:" + "a" * 64
    assert W.container_image(cfg(container={"digest": digest})) == f"docker://ghcr.io/grlo-repro/grlo@{digest}"
    assert W.container_image(cfg()) == "docker://ghcr.io/grlo-repro/grlo:0.1.0"
    assert W.container_image({"container": {"image": "docker://localhost:5000/grlo", "digest": digest}}) == \
        f"docker://localhost:5000/grlo@{digest}"
    with pytest.raises(Exception, match="digest"):
        C.validate(cfg(container={"digest": "latest"}))


def test_disk_and_directories(tmp_path):
    total, parts = D.storage_estimate(cfg(), n_prompts=1000)
    assert any(p.startswith("qwen3-4b-base weights 7.5 GiB") for p in parts)
    assert 150 * GIB < total < 400 * GIB
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "free_gib": 50}), outdir=tmp_path, resources_gpu=8)
    assert any(f.startswith("[FAIL] disk for outdir") and "GiB needed" in f for f in by_status(checks, D.FAIL))
    checks = D.doctor(cfg(), FakeProbe(**GOOD), outdir=tmp_path / "readonly", resources_gpu=8)
    assert any("not writable" in f for f in by_status(checks, D.FAIL))
    # Apptainer: the caches are the container.cache bind
    bound = cfg(container={"cache": str(tmp_path / "readonly-cache")})
    fails = by_status(D.doctor(bound, FakeProbe(**GOOD), outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] image caches (container.cache)") for f in fails)
    conda = D.doctor(bound, FakeProbe(**{**GOOD, "tools": ("conda",)}), outdir=tmp_path, resources_gpu=8, sdm="conda")
    assert not [f for f in by_status(conda, D.FAIL) if "writable" in f or "cache" in f]
    smoke_total, _ = D.storage_estimate(cfg(SMOKE))
    assert smoke_total < 8 * GIB  # SmolLM2-135M stand-ins + one GRLO resume checkpoint (smoke save_freq 1)


def test_hub_offline_needs_the_cache(tmp_path):
    c = cfg()
    repos = [r for r, _ in D.hub_repos(c)]
    assert "Qwen/Qwen3-4B-Base" in repos and "Idavidrein/gpqa" in repos
    probe = FakeProbe(**{**GOOD, "env": {"HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "k"}})
    fails = by_status(D.doctor(c, probe, outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] hub HF_HUB_OFFLINE set and") for f in fails)
    probe.cached = set(repos) - {"Qwen/Qwen3-4B-Base"}
    fails = by_status(D.doctor(c, probe, outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] hub HF_HUB_OFFLINE set and 1 repo(s)") and "Qwen/Qwen3-4B-Base" in f for f in fails)
    (tmp_path / "models" / "qwen3-4b-base").mkdir(parents=True)  # fetched already: no cache needed
    checks = D.doctor(c, probe, outdir=tmp_path, resources_gpu=8)
    assert f"[ ok ] hub HF_HUB_OFFLINE set: all {len(repos)} repos fetched or in the cache" in [ch.line() for ch in checks]


def test_pins_from_the_registry_and_lock_file(tmp_path):
    lock = tmp_path / "lock.yaml"
    lock.write_text("models: {}\nbenchmarks: {}\n")
    c = C.deep_merge(cfg(), {"lock": {"path": str(lock), "frozen": False}})
    warn = [w for w in by_status(D.doctor(c, FakeProbe(**GOOD), outdir=tmp_path, resources_gpu=8), D.WARN)
            if w.startswith("[warn] pins:")]
    assert warn and "grlo lock" in warn[0] and "models.general-reasoner-qwen3-4b (revision)" in warn[0]
    frozen = C.deep_merge(c, {"lock": {"frozen": True}})
    assert any(f.startswith("[FAIL] pins:") for f in
               by_status(D.doctor(frozen, FakeProbe(**GOOD), outdir=tmp_path, resources_gpu=8), D.FAIL))
    rev = "a" * 40
    lock.write_text(f"models:\n  general-reasoner-qwen3-4b: {{repo: TIGER-Lab/General-Reasoner-Qwen3-4B, revision: {rev}}}\n")
    assert ("TIGER-Lab/General-Reasoner-Qwen3-4B", "model", rev, "models/general-reasoner-qwen3-4b") in D.hub_sources(c)


def test_offline_cache_is_checked_at_the_pinned_revision(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snap = hub / "models--Qwen--Qwen3-4B-Base" / "snapshots"
    (snap / "old").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    probe = D.Probe()
    assert probe.hf_cached("Qwen/Qwen3-4B-Base", "model")
    assert not probe.hf_cached("Qwen/Qwen3-4B-Base", "model", "b" * 40)
    (snap / ("b" * 40)).mkdir()
    assert probe.hf_cached("Qwen/Qwen3-4B-Base", "model", "b" * 40)


def test_gated_repos_need_a_token(tmp_path):
    c = cfg()
    assert {r for r, _ in D.gated_repos(c)} == {"meta-llama/Llama-3.2-3B", "Idavidrein/gpqa"}
    fails = by_status(D.doctor(c, FakeProbe(**{**GOOD, "token": None}), outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] gated repos") and "HF_TOKEN" in f for f in fails)
    offline = FakeProbe(**{**GOOD, "online": False})
    assert any("cannot be checked offline" in w
               for w in by_status(D.doctor(c, offline, outdir=tmp_path, resources_gpu=8), D.WARN))
    denied = FakeProbe(**{**GOOD, "denied": {"Idavidrein/gpqa"}})
    fails = by_status(D.doctor(c, denied, outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any("Idavidrein/gpqa (GatedRepoError)" in f for f in fails)
    # no gated repo in the run: no line at all
    plain = cfg(backbones={"extra": []}, evaluation={"benchmarks": ["math500"]})
    assert not [ch for ch in D.doctor(plain, FakeProbe(**GOOD), outdir=tmp_path) if "gated" in ch.what]


def test_judge_key_or_local_judge(tmp_path):
    fails = by_status(D.doctor(cfg(), FakeProbe(**{**GOOD, "env": {}}), outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] AlpacaEval judge: no OPENAI_API_KEY") and "alpacaeval2" in f for f in fails)
    local = cfg(evaluation={"judge": {"base_url": "http://localhost:8000/v1"}})
    checks = D.doctor(local, FakeProbe(**{**GOOD, "env": {}}), outdir=tmp_path, resources_gpu=8)
    assert any(ch.line().startswith("[ ok ] AlpacaEval judge at http://localhost:8000/v1") for ch in checks)


def test_prompt_count_against_the_batch(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join('{"prompt": [{"role": "user", "content": "q%d"}]}\n' % i for i in range(3)))
    c = cfg(SMOKE, prompts={"path": str(f)}, grlo={"adapt_batch_size": False})
    fails = by_status(D.doctor(c, FakeProbe(), outdir=tmp_path), D.FAIL)
    assert any(x.startswith("[FAIL] 3 prompts") and "train_batch_size 4 is larger than the 3" in x for x in fails)
    # the native engine's rule (smoke's verl engine also needs whole micro-batches of 2 and 4 per mini-batch)
    adapt = cfg(SMOKE, prompts={"path": str(f)}, grlo={"adapt_batch_size": True, "engine": "native",
                                                        "actor": {"ppo_mini_batch_size": 2},
                                                        "critic": {"ppo_mini_batch_size": 2}})
    assert any("adapt_batch_size shrinks it" in w for w in by_status(D.doctor(adapt, FakeProbe(), outdir=tmp_path),
                                                                         D.WARN))


def test_sandbox_without_namespaces_warns(tmp_path):
    checks = D.doctor(cfg(SMOKE), FakeProbe(isolation="process_group"), outdir=tmp_path)
    assert any(w.startswith("[warn] code sandbox: process group") for w in by_status(checks, D.WARN))


def test_parse_resources():
    assert D.parse_resources(["mem_mb=100", "gpu=4"]) == 4 and D.parse_resources(None) is None
    with pytest.raises(Exception, match="gpu=<integer>"):
        D.parse_resources(["gpu=four"])


def test_cli_smoke_config_passes_here(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = main(["doctor", "--config", *SMOKE, "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "[FAIL]" not in out and out.strip().endswith("ready: nothing found that would stop the run")


def test_cli_paper_config_fails_on_the_gpu_here(capsys, monkeypatch, tmp_path):
    if D.Probe().gpus()[0]:
        pytest.skip("this machine has GPUs")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = main(["doctor", "--config", *PAPER, "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert any(line.startswith("[FAIL] GPUs: no GPU visible") for line in out.splitlines()), out


def test_prompt_check_in_the_host_env_without_torch(tmp_path, monkeypatch):
    """The host env (envs/snakemake.yaml) has no torch: the trainer's batch rules cannot be imported there."""
    import sys

    monkeypatch.setitem(sys.modules, "grlo.train.batching", None)  # import fails as it would without torch
    f = tmp_path / "p.jsonl"
    f.write_text("{}\n" * 3)
    c = cfg(SMOKE, prompts={"path": str(f)}, grlo={"adapt_batch_size": False})
    fails = by_status(D.doctor(c, FakeProbe(), outdir=tmp_path), D.FAIL)
    assert any(x.startswith("[FAIL] 3 prompts vs grlo.train_batch_size 4") for x in fails), fails
    ok = D.doctor(cfg(SMOKE), FakeProbe(), outdir=tmp_path)
    assert any(ch.line().startswith("[ ok ] 40 prompts vs grlo.train_batch_size 4") for ch in ok)


def test_prompt_check_uses_the_engines_batch_rule(tmp_path):
    """The public 1,000 prompts on the paper config: verl needs whole micro-batches (16 and 32) per GPU, so its batch
    is 512 (the dry run's data.train_batch_size); the native engine's rule keeps 4 optimizer steps on 4 GPUs: 992."""
    from grlo.train.train_grlo import verl_batch

    g = cfg()["grlo"]
    want = {"verl": verl_batch(g, 1000, "config")["train_batch_size"], "native": 992}
    assert want["verl"] == 512
    for engine, bs in want.items():
        warns = by_status(D.doctor(cfg(grlo={"engine": engine}), FakeProbe(), outdir=tmp_path), D.WARN)
        assert any(f"adapt_batch_size shrinks it to {bs}:" in w for w in warns), (engine, warns)
