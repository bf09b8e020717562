"""Containers and clusters: image pins == pyproject pins (Snakemake only in the host's [workflow] extra);
`--sdm apptainer` passes the image, --nv and the cache bind with no profile (a stub `apptainer` on PATH records its
arguments and runs the command on the host); the SLURM profile renders per-rule GPU resources in a dry run, groups
the score jobs and leaves the light rules local; training loggers are off by default and in the image."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from grlo.config import REPO_ROOT

HOST_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([A-Za-z0-9_.\-]+)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(specs) -> dict:
    """{(name, extras): version} of exact pins; unpinned names map to None."""
    out = {}
    for s in specs:
        s = s.strip().strip('"')
        m = PIN.match(s)
        if m:
            out[(norm(m.group(1)), m.group(2) or "")] = m.group(3)
        elif re.match(r"^[A-Za-z0-9_.\-]+(\[[^\]]*\])?$", s):
            name = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", s)
            out[(norm(name.group(1)), name.group(2) or "")] = None
    return out


def pyproject():
    """(dependencies, the [gpu] extra + the [loggers] extra): what the rules' environments hold."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    extras = data["project"]["optional-dependencies"]
    return data["project"]["dependencies"], extras["gpu"] + extras["loggers"]


def test_host_and_gpu_stacks_never_share_an_install():
    """`pip install -e '.[gpu]'` must not bring Snakemake's SLURM plugin (numpy >= 2.4.5) beside vLLM (numpy < 2.4)."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    deps, extras = data["project"]["dependencies"], data["project"]["optional-dependencies"]
    for specs in (deps, extras["gpu"], extras["loggers"]):
        assert not {k[0] for k in pins(specs)} & HOST_ONLY
    assert {k[0] for k in pins(extras["workflow"])} == HOST_ONLY
    assert "'.[dev,workflow]'" in (REPO_ROOT / "Makefile").read_text()  # make smoke / make test drive Snakemake


def dockerfile_specs() -> list[str]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    run = [line for line in text.splitlines() if line.startswith("RUN pip install") and "--no-deps" not in line]
    assert len(run) == 1, "one pinned `RUN pip install` line expected"
    return run[0].split()[3:]


def test_dockerfile_pins_equal_pyproject():
    deps, gpu = pyproject()
    want = {k: v for k, v in pins(deps + gpu).items() if k[0] not in HOST_ONLY}
    assert want.pop(("trl", "")) == want[("trl", "[vllm]")]  # trl[vllm] supersedes the plain pin (same version)
    got = pins(dockerfile_specs())
    assert {k: v for k, v in got.items() if k in want} == want
    assert not {k for k in got if k[0] in HOST_ONLY}, "Snakemake belongs on the host, not in the GPU image"
    extra = {k for k in got if k not in want}
    assert extra <= {("nvidia-ml-py", "")}, extra  # NVML bindings for grlo.accounting.record_device
    assert ("tensorboard", "") in got and ("wandb", "") in got  # loggers of every training rule, in the image
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-devel-", text, re.M), "CUDA devel base (DeepSpeed JIT)"
    assert re.search(r"^USER grlo$", text, re.M) and "HF_HOME=/cache/huggingface" in text
    for lib, ver in (("vllm", "0.31.0"), ("torch", "2.13.0"), ("trl", "1.16.0"), ("transformers", "5.17.0")):
        assert f'org.grlo.{lib}="{ver}"' in text


@pytest.mark.parametrize("env,gpu", [("grlo.yaml", False), ("grlo-gpu.yaml", True)])
def test_conda_env_pins_equal_pyproject(env, gpu):
    deps, gpu_deps = pyproject()
    want = {k: v for k, v in pins(deps + (gpu_deps if gpu else [])).items() if k[0] not in HOST_ONLY}
    if gpu:  # trl[vllm] supersedes the plain trl pin (same version)
        assert want.pop(("trl", "")) == want[("trl", "[vllm]")]
    data = yaml.safe_load((REPO_ROOT / "envs" / env).read_text())
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    got = pins(pip)
    assert {k: v for k, v in got.items() if k in want} == want
    assert not {k for k in got if k[0] in HOST_ONLY}
    host = yaml.safe_load((REPO_ROOT / "envs" / "snakemake.yaml").read_text())
    host_pins = pins(next(d["pip"] for d in host["dependencies"] if isinstance(d, dict)))
    workflow = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["workflow"]
    assert {k[0]: v for k, v in host_pins.items() if k[0] in HOST_ONLY} == {k[0]: v for k, v in pins(workflow).items()}
    assert not {k[0] for k in host_pins} & {"torch", "vllm", "numpy"}  # the host env never holds the GPU stack


STUB = """#!/bin/bash
# stub apptainer: records its arguments; `pull` creates the image file; `exec` runs the command on the host
echo "$*" >> "$STUB_LOG"
case "$1" in --version|version) echo "apptainer version 1.4.0"; exit 0;; esac
for a in "$@"; do [ "$a" = pull ] && { dest="${@: -2:1}"; : > "$dest"; exit 0; }; done
exec bash -c "${@: -1}"
"""


def snakemake(args, cwd: Path, stub_dir: Path, timeout=300):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(stub_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["STUB_LOG"] = str(stub_dir / "apptainer.log")
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO_ROOT / "Snakefile"), "--directory", str(cwd),
           *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def stub(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "apptainer").write_text(STUB)
    (d / "apptainer").chmod(0o755)
    return d


def config_image(files) -> str:
    from grlo import config as _config

    return _config.load(files)["container"]["image"]


SMOKE = [str(REPO_ROOT / "config" / "config.yaml"), str(REPO_ROOT / "config" / "smoke.yaml")]


def test_use_singularity_dry_run_shows_the_image(tmp_path, stub):
    """--use-singularity: the older spelling of --sdm apptainer, still accepted."""
    work = tmp_path / "run"
    work.mkdir()
    r = snakemake(["-n", "--cores", "all", "--use-singularity", "--configfile", *SMOKE], work, stub)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert f"Singularity image {config_image(SMOKE)} will be pulled" in out


def test_sdm_apptainer_passes_nv_and_cache_bind_without_a_profile(tmp_path, stub):
    """Runs one cheap rule (forecast) through the stub: the exec line must carry --nv, the /cache bind (config
    container.cache, created if missing) and the image; no workflow profile is loaded."""
    work = tmp_path / "run"
    work.mkdir()
    cache = tmp_path / "cache-dir"
    r = snakemake(["smoke/results/forecast.csv", "--cores", "1", "--sdm", "apptainer", "--workflow-profile", "none",
                   "--configfile", *SMOKE, "--config", f"container={{cache: {cache}}}"], work, stub)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (stub / "apptainer.log").read_text().splitlines()
    pulls = [line for line in log if line.startswith("pull ")]
    assert pulls and pulls[0].endswith(config_image(SMOKE))
    execs = [line for line in log if line.startswith("exec ")]
    assert execs and "--nv" in execs[0].split() and f"--bind {cache}:/cache" in execs[0]
    assert cache.is_dir()
    assert "grlo forecast" in execs[0]
    assert (work / "smoke" / "results" / "forecast.csv").read_text().startswith("# mode: smoke")


def test_a_cache_bind_on_the_command_line_wins(tmp_path, stub):
    work = tmp_path / "run"
    work.mkdir()
    r = snakemake(["smoke/results/forecast.csv", "--cores", "1", "--sdm", "apptainer", "--apptainer-args",
                   f"--bind {tmp_path}:/cache", "--configfile", *SMOKE], work, stub)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exec_line = next(line for line in (stub / "apptainer.log").read_text().splitlines() if line.startswith("exec "))
    assert exec_line.count(":/cache") == 1 and f"--bind {tmp_path}:/cache" in exec_line and "--nv" in exec_line


def test_localrules_are_the_light_rules():
    text = (REPO_ROOT / "Snakefile").read_text()
    local = set(re.findall(r"^    (\w+),$", text.split("localrules:", 1)[1].split("\n\n", 1)[0], re.M))
    rules = set(re.findall(r"^rule (\w+):", "\n".join(p.read_text() for p in (REPO_ROOT / "workflow/rules").glob("*.smk")),
                           re.M)) | {"all", "table1"}
    assert local <= rules, local - rules
    assert {"download_prompts", "download_benchmark", "fetch_model", "table", "claims", "forecast", "figures"} <= local
    assert not local & {"train_grlo", "train_rlvr", "generate", "score", "lmeval_fewshot", "prepare_prompts"}


def test_training_loggers_are_off_by_default_and_selectable():
    from grlo.train.rlvr import grpo_kwargs

    paper = __import__("grlo.config", fromlist=["load"]).load([str(REPO_ROOT / "config" / "config.yaml")])
    assert paper["grlo"]["logger"] == [] and paper["rlvr"]["train"]["report_to"] == []
    kw, _, _ = grpo_kwargs(paper, "rlvr", "/tmp/x", on_gpu=False, world_size=1)
    assert kw["report_to"] == []
    paper["rlvr"]["train"]["report_to"] = ["tensorboard"]
    kw, _, _ = grpo_kwargs(paper, "rlvr", "/tmp/x", on_gpu=False, world_size=1)
    assert kw["report_to"] == ["tensorboard"]


def test_slurm_profile_dry_run_renders_gpu_resources(tmp_path, stub):
    work = tmp_path / "run"
    work.mkdir()
    paper = [str(REPO_ROOT / "config" / "config.yaml")]
    r = snakemake(["results/table3.csv", "-n", "--profile", str(REPO_ROOT / "workflow" / "profiles" / "slurm"),
                   "--workflow-profile", "none", "--sdm", "apptainer", "--configfile", *paper], work, stub)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    block = out[out.index("rule train_grlo:"):]
    res = next(line for line in block.splitlines() if line.strip().startswith("resources:"))
    from grlo import config as _config

    gpus = _config.load(paper)["resources"]["gpus_train"]
    prof = yaml.safe_load((REPO_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    want = prof["set-resources"]["train_grlo"]
    assert f"gpu={gpus}" in res and f"gpu_model={want['gpu_model']}" in res
    assert f"mem_mb={want['mem_mb']}" in res and f"runtime={want['runtime']}" in res
    assert f"cpus_per_task={want['cpus_per_task']}" in res
    # the short score jobs go to SLURM in groups (group-components in the profile), not one sbatch each
    assert "Group job score" in out and prof["group-components"]["score"] > 1


def test_slurm_profile_resources_reach_sbatch(tmp_path):
    """The plugin's own submit-string builder turns the profile's GPU resources into sbatch flags."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.utils import set_gres_string

    prof = yaml.safe_load((REPO_ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    res = dict(prof["set-resources"]["train_grlo"], gpu=4)

    class R(dict):
        __getattr__ = dict.get

    job = SimpleNamespace(resources=R(res))
    flags = set_gres_string(job)
    assert f"--gpus={res['gpu_model']}:4" in flags


# ------------------------------------------------------------------ images a cluster can build, CI, metadata (issue 19)
def test_apptainer_definitions_are_current_and_carry_every_pin():
    """containers/*.def are generated from the Dockerfiles: same CUDA base, every pip pin, the same files copied."""
    p = subprocess.run([sys.executable, "containers/def_from_dockerfile.py", "--check"], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for sif, dockerfile in (("grlo", "Dockerfile"), ("grlo-verl", "docker/verl.Dockerfile")):
        docker = (REPO_ROOT / dockerfile).read_text()
        definition = (REPO_ROOT / "containers" / f"{sif}.def").read_text()
        base = re.search(r"^ARG CUDA_IMAGE=(\S+)", docker, flags=re.M).group(1)
        assert f"Bootstrap: docker\nFrom: {base}\n" in definition
        for pin in re.findall(r'"([A-Za-z0-9_.\-\[\],]+==[^"]+)"', docker):
            assert f'"{pin}"' in definition, (sif, pin)
        for src in re.findall(r"^COPY (.+) \S+$", docker, flags=re.M):
            for s in src.split():
                assert f"\n    {s} /opt/grlo/" in definition
        assert 'export PATH="/opt/venv/bin:$PATH"' in definition and "%post\n    set -e\n" in definition


def test_make_sif_builds_both_images_with_fakeroot(tmp_path):
    stub = tmp_path / "apptainer"
    stub.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/calls.log\ntouch \"$3\"\n")
    stub.chmod(0o755)
    p = subprocess.run(["make", "sif", f"APPTAINER={stub}", f"SIF_DIR={tmp_path}"], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        f"build --fakeroot {tmp_path}/grlo.sif containers/grlo.def",
        f"build --fakeroot {tmp_path}/grlo-verl.sif containers/grlo-verl.def"]


def test_make_test_never_calls_sudo():
    make = (REPO_ROOT / "Makefile").read_text()
    assert "sudo apt-get" not in make.replace('echo "To run them: sudo', "")
    p = subprocess.run(["make", "-n", "/usr/bin/chromium", "-B"], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and 'id -u)" = 0' in p.stdout  # root installs; anyone else is told the command


def test_ci_runs_make_test_on_push_and_keeps_the_smoke_report():
    wf = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "test.yml").read_text())
    on = wf[True] if True in wf else wf["on"]
    assert "push" in on
    steps = wf["jobs"]["test"]["steps"]
    assert any(s.get("run") == "make test" for s in steps)
    keep = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "smoke/report.html" in keep["with"]["path"] and keep.get("if") == "always()"
    assert "--basetemp=/tmp/grlo-pytest" in wf["jobs"]["test"]["env"]["PYTEST_ADDOPTS"]


def test_license_citation_and_catalog_agree_with_the_project():
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "Apache-2.0"
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text() and "Version 2.0" in (REPO_ROOT / "LICENSE").read_text()
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "Apache-2.0" and cff["version"] == data["project"]["version"]
    paper = cff["preferred-citation"]
    assert paper["title"].startswith("GRLO: Towards Generalizable") and paper["url"].endswith("2605.15464")
    cat = yaml.safe_load((REPO_ROOT / ".snakemake-workflow-catalog.yml").read_text())
    flags = cat["usage"]["mandatory-flags"]["flags"]
    assert "--sdm apptainer" in flags and "workflow-profile" not in flags  # the workflow adds --nv itself


@pytest.mark.parametrize("target", ["smoke", "test"])
def test_make_smoke_and_test_install_bubblewrap_and_apt_runs_under_one_lock(tmp_path, target):
    """The smoke DAG scores code in the sandbox as the suite does, so both targets install bubblewrap where it is
    missing (a fresh machine's `make smoke` died at its first code score); every apt-get holds the one lock, so
    `make -j` never runs two at once; only `make test` wants Chromium (the report tests)."""
    p = subprocess.run(["make", "-n", target, f"BWRAP={tmp_path}/bwrap", f"CHROMIUM={tmp_path}/chromium"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "install -y --no-install-recommends bubblewrap" in p.stdout
    assert ("--no-install-recommends chromium" in p.stdout) == (target == "test")
    before = re.findall(r"(\S+)\s+apt-get", p.stdout)
    assert before and set(before) <= {"/tmp/grlo-apt.lock", "sudo"}, before  # sudo: only in the message to non-root
