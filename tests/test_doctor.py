"""`grlo doctor`: the checklist on this machine (smoke passes, paper fails on the GPU line) and each check against a
faked machine (GPUs, tools, disk, network, tokens, keys, sandbox)."""

import json
import os
import stat
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
                 token=None, cached=(), denied=(), isolation="namespaces", driver="580.65.06", image=None,
                 token_file=None, files=()):
        self._gpus = [{"index": i, "name": "NVIDIA H100", "memory_mib": int(mem_gib * 1024)} for i in range(len(gpus))]
        self.tools, self._env, self.free = set(tools), dict(env or {}), free_gib * GIB
        if token:  # an exported token (a login file alone: token_file)
            self._env.setdefault("HF_TOKEN", token)
        self.online, self.token, self.cached, self.denied, self.iso = online, token, set(cached), set(denied), isolation
        self.driver, self.token_path, self.files, self.calls = driver, token_file, set(map(str, files)), []
        self.image = image if image is not None else {"imports": {"torch": "2.13.0"}, "cuda": "13.0", "gpus": 8,
                                                      "gpu0": "NVIDIA H100", "errors": {}}

    def driver_version(self):
        return self.driver

    def run(self, cmd, timeout=900.0):
        self.calls.append(cmd)
        return 0, json.dumps(self.image) + "\n", ""

    def hf_token_file(self):
        return self.token_path

    def file_exists(self, path):
        return str(path) in self.files

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
    assert D.rule_gpus(cfg())["score"] == 2  # the default judge is served by the scoring job (tensor parallel 2)
    assert D.rule_gpus(cfg(evaluation={"judge": {"serve": None, "base_url": "http://h/v1"}}))["score"] == 0
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


def test_disk_and_directories(tmp_path, capsys):
    total, parts = D.storage_estimate(cfg())
    assert any(p.startswith("qwen3-4b-base weights 7.5 GiB") for p in parts)
    # the public 1K file: 15 verl steps >= grlo.verl.save_freq 5, so each GRLO run keeps one resume checkpoint
    assert any(p.startswith("qwen3-4b-base/grlo final 15.0 GiB + resume 89.9 GiB") for p in parts)
    assert D.storage_estimate(cfg(), grlo_steps=4)[0] < total  # no save before the end: no resume checkpoint
    checks = D.doctor(cfg(), FakeProbe(**{**GOOD, "free_gib": 50}), outdir=tmp_path, resources_gpu=8)
    line = next(f for f in by_status(checks, D.FAIL) if f.startswith("[FAIL] disk for outdir"))
    # one storage estimate everywhere: doctor's need is the number `grlo forecast` prints
    assert main(["forecast", "--config", *PAPER]) == 0
    printed = capsys.readouterr().out.split("storage: ~", 1)[1].split(" GiB", 1)[0]
    assert f"~{printed} GiB needed" in line and int(printed) == round(total / GIB)
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
    assert warn and "grlo lock" in warn[0] and "models.qwen3-4b-base (weight sha256s)" in warn[0]
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
    api = cfg(evaluation={"judge": {"serve": None, "model": "gpt-x"}})
    fails = by_status(D.doctor(api, FakeProbe(**{**GOOD, "env": {}}), outdir=tmp_path, resources_gpu=8), D.FAIL)
    assert any(f.startswith("[FAIL] AlpacaEval judge: no OPENAI_API_KEY") and "alpacaeval2" in f for f in fails)
    served = D.doctor(cfg(), FakeProbe(**{**GOOD, "env": {}}), outdir=tmp_path, resources_gpu=8)  # the default
    assert any(ch.line().startswith("[ ok ] AlpacaEval judge") and "served by the scoring job" in ch.line()
               for ch in served)
    local = cfg(evaluation={"judge": {"base_url": "http://localhost:8000/v1", "serve": None}})
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


# ------------------------------------------------------------------- images, driver, credentials, overlays (issue 19)
STANDIN = """#!{python}
# stand-in for {name}: records its arguments (one JSON list a line), answers as the real tool would on 8 x H100
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps([{name!r}] + sys.argv[1:]) + "\\n")
answers = {answers!r}
print(next((v for k, v in answers if k in " ".join(sys.argv[1:])), answers[-1][1]))
"""


def standins(tmp_path, driver="580.65.06", verl_fails=False):
    """`apptainer` and `nvidia-smi` on PATH that record their calls; the image probe's answer depends on the image."""
    import sys

    bin_, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_.mkdir()
    ok = {"imports": {"torch": "2.13.0", "vllm": "0.31.0"}, "cuda": "13.0", "gpus": 8, "gpu0": "NVIDIA H100",
          "errors": {}, "hf_token": False}
    verl = {"imports": {"torch": "2.8.0", "verl": "0.6.1"}, "cuda": "12.8", "gpus": 8, "gpu0": "NVIDIA H100",
            "errors": {"verl": "ModuleNotFoundError: No module named 'verl'"} if verl_fails else {}}
    for name, answers in (("apptainer", [("grlo-verl", json.dumps(verl)), ("", json.dumps(ok))]),
                          ("nvidia-smi", [("", driver)])):
        f = bin_ / name
        f.write_text(STANDIN.format(python=sys.executable, name=name, log=str(log), answers=answers))
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return bin_, log


def test_doctor_pilot_starts_each_image_with_nv_and_checks_its_imports(tmp_path, monkeypatch, capsys):
    bin_, log = standins(tmp_path)
    monkeypatch.setattr(D.Probe, "reachable", lambda self, url, timeout=5.0: False)  # offline here: no waiting
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    rc = main(["doctor", "--config", *PAPER, str(REPO_ROOT / "config" / "pilot.yaml"), "--resources", "gpu=4",
               "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    execs = [c for c in calls if c[:2] == ["apptainer", "exec"]]
    assert len(execs) == 2  # the main image and verl's, each once
    for c, image, stack in ((execs[0], "grlo:0.1.0", "'vllm'"), (execs[1], "grlo-verl:0.1.0", "'verl'")):
        assert "--nv" in c and c[c.index("--home") + 1] == str(tmp_path / "pilot") and image in c[c.index("--nv") + 3]
        assert c[c.index("--bind") + 1].endswith(":/cache") and c[-3:-1] == ["python", "-c"]
        assert 'torch.zeros(1, device="cuda")' in c[-1] and stack in c[-1]
    assert ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"] in calls
    assert "[ ok ] container.image started with --nv: CUDA 13.0 initialised on 8 GPU(s)" in out
    assert "[ ok ] container.verl_image started with --nv: CUDA 12.8 initialised on 8 GPU(s)" in out
    assert "[ ok ] driver 580.65.06 vs CUDA 13.0 of container.image" in out
    assert "[ ok ] driver 580.65.06 vs CUDA 12.8 of container.verl_image" in out
    assert rc == 1  # the registry and hub are unreachable here: failures, but the images themselves pass


def test_doctor_old_driver_and_a_broken_image_fail(tmp_path, monkeypatch, capsys):
    bin_, log = standins(tmp_path, driver="550.54.15", verl_fails=True)
    monkeypatch.setattr(D.Probe, "reachable", lambda self, url, timeout=5.0: False)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    main(["doctor", "--config", *PAPER, str(REPO_ROOT / "config" / "pilot.yaml"), "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert "[FAIL] driver 550.54.15 vs CUDA 13.0 of container.image: CUDA 13.0 needs driver >= 580.65.06 (R580)" in out
    assert "[ ok ] driver 550.54.15 vs CUDA 12.8" not in out and "[FAIL] driver 550.54.15 vs CUDA 12.8" in out
    assert "[FAIL] container.verl_image: verl failed inside the image: ModuleNotFoundError" in out


def test_the_image_probe_runs_and_reports_a_missing_module(tmp_path):
    import subprocess
    import sys

    # a CPU-only torch stand-in keeps this fast (the real torch import takes ~10 s here); the probe is the real one
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import types\n__version__ = '0'\nversion = types.SimpleNamespace(cuda=None)\n"
        "cuda = types.SimpleNamespace(device_count=lambda: 0)\n")
    p = subprocess.run([sys.executable, "-c", D.IMAGE_PROBE % repr(["json", "no_such_module_x"])], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0 and "json" in got["imports"] and "no_such_module_x" in got["errors"]
    assert got["gpus"] == 0 and "hf_token" in got and "openai_key" in got


def test_image_cuda_matches_the_dockerfiles_and_each_image_names_its_own_sif():
    for key, dockerfile in (("container.image", "Dockerfile"), ("container.verl_image", "docker/verl.Dockerfile")):
        text = (REPO_ROOT / dockerfile).read_text()
        assert f"ARG CUDA_IMAGE=nvidia/cuda:{D.IMAGES[key]['cuda']}." in text
        assert (REPO_ROOT / D.IMAGES[key]["def"]).is_file()
    c = cfg()
    checks = [ch.line() for ch in D.doctor(c, FakeProbe(gpus=range(8), online=False), resources_gpu=8)]
    main_line = next(x for x in checks if "set container.image" in x)
    verl_line = next(x for x in checks if "set container.verl_image" in x)
    assert "apptainer pull grlo.sif " in main_line and "apptainer pull grlo-verl.sif " in verl_line
    assert "make sif" in main_line


def test_login_token_hidden_from_the_container_fails_with_the_fix(tmp_path):
    login = tmp_path / "token"
    login.write_text("hf_x")
    c = cfg(container={"cache": str(tmp_path / "cache")})
    hidden = FakeProbe(gpus=range(8), token_file=login, image={**FakeProbe().image, "hf_token": None})
    fails = by_status(D.doctor(c, hidden, outdir=tmp_path, resources_gpu=8), D.FAIL)
    line = next(f for f in fails if "Hugging Face token does not reach the jobs" in f)
    assert f"export HF_TOKEN=$(cat {login})" in line and str(tmp_path / "cache" / "huggingface" / "token") in line
    # the token file in the /cache bind (HF_HOME=/cache/huggingface inside) or an exported HF_TOKEN: seen by the job
    placed = FakeProbe(gpus=range(8), token_file=login, files=[tmp_path / "cache" / "huggingface" / "token"],
                       image={**FakeProbe().image, "hf_token": None})
    oks = by_status(D.doctor(c, placed, outdir=tmp_path, resources_gpu=8), D.OK)
    assert any("Hugging Face token reaches the jobs" in f for f in oks)
    exported = FakeProbe(gpus=range(8), token="hf_y", image={**FakeProbe().image, "hf_token": None})
    assert any("HF_TOKEN (exported" in f for f in by_status(D.doctor(c, exported, outdir=tmp_path,
                                                                       resources_gpu=8), D.OK))
    # what the image itself reports wins: a job that sees no token fails even when the host has one exported
    blind = FakeProbe(gpus=range(8), token="hf_y", image={**FakeProbe().image, "hf_token": False})
    assert not any("reaches the jobs" in f for f in by_status(D.doctor(c, blind, outdir=tmp_path, resources_gpu=8),
                                                               D.OK))
    # --sdm conda: the host's login file is what the job reads
    conda = FakeProbe(gpus=range(8), tools=("conda",), token_file=login)
    assert any("huggingface-cli login" in f for f in by_status(D.doctor(cfg(grlo={"engine": "native"}), conda,
                                                                        outdir=tmp_path, resources_gpu=8, sdm="conda"),
                                                               D.OK))


def test_sdm_conda_with_the_verl_engine_is_refused_in_one_line(tmp_path):
    fails = by_status(D.doctor(cfg(), FakeProbe(gpus=range(8), tools=("conda",)), outdir=tmp_path, resources_gpu=8,
                               sdm="conda"), D.FAIL)
    (line,) = [f for f in fails if "--sdm conda with grlo.engine verl" in f]
    assert "use --sdm apptainer" in line and "grlo.engine: native" in line


def test_custom_models_are_checked(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    c = cfg(evaluation={"custom_models": [
        {"name": "mine", "path": "ckpt", "turn_end": "<|im_end|>"},
        {"name": "gone", "path": str(tmp_path / "nothing"), "turn_end": "<|im_end|>"},
        {"name": "hubbed", "hub_id": "org/m", "revision": "a" * 40, "turn_end": None}]})
    checks = D.doctor(c, FakeProbe(gpus=range(8), online=False), outdir=tmp_path, resources_gpu=8)
    assert any(f.startswith("[ ok ] custom model mine") for f in by_status(checks, D.OK))
    assert any(f.startswith("[FAIL] custom model gone") and "no config.json" in f for f in by_status(checks, D.FAIL))
    assert any(f.startswith("[FAIL] custom model hubbed: org/m@aaaaaaaaaaaa neither reachable nor cached")
               for f in by_status(checks, D.FAIL))


def test_an_overlay_alone_names_the_base_config(capsys):
    for overlay in ("smoke.yaml", "pilot.yaml", "headline.yaml"):
        assert main(["doctor", "--config", f"config/{overlay}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"{overlay} is an overlay (use --config config/config.yaml config/{overlay})"), err
        assert len(err.splitlines()) == 1


def test_slurm_runtimes_cover_the_forecast_with_a_margin(tmp_path, monkeypatch):
    from grlo.report.forecast import SLURM_MARGIN, job_runtimes

    need = job_runtimes(cfg())
    # the committed profile covers every GPU rule's longest job (generate: Qwen3-4B's 32K-token answers)
    ctx = D.Ctx(cfg(), FakeProbe(), tmp_path, 8, True, "apptainer")
    lines = [ch.line() for ch in D.check_slurm_runtimes(ctx)]
    assert len(lines) == 3 and all(x.startswith("[ ok ] SLURM runtime of") for x in lines), lines
    assert need["generate"]["minutes"] >= need["generate"]["hours_high"] * SLURM_MARGIN * 60 > 240  # the old limit
    # the old 240-minute generate limit fails, naming the rule, the job and the file to edit
    import yaml

    prof = yaml.safe_load(D.SLURM_PROFILE.read_text())
    prof["set-resources"]["generate"]["runtime"] = 240
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(prof))
    monkeypatch.setattr(D, "SLURM_PROFILE", tmp_path / "config.yaml")
    monkeypatch.setattr(D._config, "REPO_ROOT", tmp_path)
    fails = [ch.line() for ch in D.check_slurm_runtimes(ctx) if ch.status == D.FAIL]
    assert len(fails) == 1 and fails[0].startswith("[FAIL] SLURM runtime of generate: 240 min")
    assert "qwen3-4b--" in fails[0] and "set-resources.generate.runtime in config.yaml" in fails[0]


def test_grlo_version(capsys):
    import grlo

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"grlo {grlo.__version__}"
