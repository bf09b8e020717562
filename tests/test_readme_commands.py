"""The README's GPU commands work as written: the Apptainer command, copied from the README, passes --nv and the
cache bind to a stand-in `apptainer` without any profile; every `grlo` command line of that section parses; the
release workflow builds the image(s) and its digest pinning rewrites only the container section of the config."""

import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grlo import config as C
from grlo import workflow as W
from grlo.cli import COMMANDS
from grlo.config import REPO_ROOT

SMOKE = [str(REPO_ROOT / "config" / "config.yaml"), str(REPO_ROOT / "config" / "smoke.yaml")]
STUB = """#!/bin/bash
echo "$*" >> "$STUB_LOG"
case "$1" in --version|version) echo "apptainer version 1.4.0"; exit 0;; esac
for a in "$@"; do [ "$a" = pull ] && { dest="${@: -2:1}"; : > "$dest"; exit 0; }; done
exec bash -c "${@: -1}"
"""


def gpu_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split("## Reproducing the paper on GPUs", 1)[1].split("\n## ", 1)[0]


def gpu_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", gpu_section(), re.S).group(1)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_leads_with_sdm_apptainer_and_runs_doctor_first():
    cmds = gpu_commands()
    assert cmds[0].startswith("grlo doctor --config config/config.yaml")
    run = next(c for c in cmds if c.startswith("snakemake "))
    assert "--sdm apptainer" in run and "--use-singularity" not in run
    assert "--use-singularity" in gpu_section()  # mentioned as the older spelling
    assert "--workflow-profile" not in gpu_section()  # nothing to remember: the workflow adds --nv and the bind


def test_readme_grlo_commands_parse():
    import argparse
    import importlib

    for cmd in gpu_commands():
        argv = shlex.split(cmd)
        if argv[0] != "grlo":
            continue
        assert argv[1] in COMMANDS, cmd
        parser = argparse.ArgumentParser()
        importlib.import_module(COMMANDS[argv[1]][0]).add_arguments(parser)
        parser.parse_args(argv[2:])


@pytest.mark.parametrize("which", ["whole run", "one target"])
def test_readme_gpu_command_binds_the_cache_and_passes_nv(tmp_path, which):
    """The README's Apptainer commands, verbatim, on a cheap smoke target with the smoke config (the whole-run
    command gets the target as its first argument, the one-target command has it replaced)."""
    cmds = [shlex.split(c) for c in gpu_commands() if c.startswith("snakemake ") and "--sdm apptainer" in c]
    if which == "whole run":
        argv = next(a for a in cmds if not any(x.startswith("results/") for x in a))
        argv = [argv[0], "smoke/results/forecast.csv", *argv[1:]]
    else:
        argv = next(a for a in cmds if any(x.startswith("results/") for x in a))
        argv = [("smoke/results/forecast.csv" if x.startswith("results/") else x) for x in argv]
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "apptainer").write_text(STUB)
    (stub / "apptainer").chmod(0o755)
    home, work = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    work.mkdir()
    env = dict(os.environ, HOME=str(home), STUB_LOG=str(stub / "apptainer.log"),
               PATH=os.pathsep.join([str(stub), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    full = [str(Path(sys.executable).parent / "snakemake"), *argv[1:], "-s", str(REPO_ROOT / "Snakefile"),
            "--directory", str(work), "--configfile", *SMOKE]
    r = subprocess.run(full, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    execs = [line for line in (stub / "apptainer.log").read_text().splitlines() if line.startswith("exec ")]
    assert execs, (stub / "apptainer.log").read_text()
    assert "--nv" in execs[0].split()
    assert f"--bind {home}/.cache/grlo:/cache" in execs[0]  # container.cache default, created by the workflow
    assert (home / ".cache" / "grlo").is_dir()
    assert (work / "smoke" / "results" / "forecast.csv").is_file()


def test_release_workflow_builds_and_pins_the_image():
    wf = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "image.yml").read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["tags"] == ["v*"]
    job = wf["jobs"]["build"]
    main = next(m for m in job["strategy"]["matrix"]["include"] if m["name"] == "grlo")
    assert main["dockerfile"] == "Dockerfile" and main["config_key"] == "container"
    steps = {s.get("uses", s.get("name")): s for s in job["steps"]}
    build = steps["docker/build-push-action@v6"]
    assert build["with"]["push"] is True and build["with"]["file"] == "${{ matrix.dockerfile }}"
    assert any("pin_digest.py" in s.get("run", "") for s in job["steps"])


def test_pin_digest_rewrites_only_the_container_section():
    pin = runpy.run_path(str(REPO_ROOT / ".github" / "workflows" / "pin_digest.py"))["pin"]
    text = (REPO_ROOT / "config" / "config.yaml").read_text()
    digest = "sha256:" + "0123456789abcdef" * 4
    new = pin(text, "container", "docker://ghcr.io/someone/grlo:0.2.0", digest)
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
    assert len(changed) == 2 and len(new.splitlines()) == len(text.splitlines())
    cfg = yaml.safe_load(new)
    assert cfg["container"]["digest"] == digest and cfg["container"]["image"].endswith("grlo:0.2.0")
    C.validate(cfg)
    assert W.container_image(cfg) == f"docker://ghcr.io/someone/grlo@{digest}"
    with pytest.raises(SystemExit, match="not a sha256 digest"):
        pin(text, "container", "docker://x/y:1", "latest")
    with pytest.raises(SystemExit, match="no top-level section"):
        pin(text, "nosuch", "docker://x/y:1", digest)


def test_release_workflow_pins_the_verl_image_too():
    wf = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "image.yml").read_text())
    verl = next(m for m in wf["jobs"]["build"]["strategy"]["matrix"]["include"] if m["name"] == "grlo-verl")
    assert verl["dockerfile"] == "docker/verl.Dockerfile" and verl["config_key"] == "container.verl_image"
    pin = runpy.run_path(str(REPO_ROOT / ".github" / "workflows" / "pin_digest.py"))["pin"]
    text = (REPO_ROOT / "config" / "config.yaml").read_text()
    digest = "sha256:" + "fedcba9876543210" * 4
    new = pin(text, "container.verl_image", "docker://ghcr.io/someone/grlo-verl:0.2.0", digest)
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
    assert len(changed) == 1 and "#" in changed[0][1]  # one line, its comment kept
    cfg = yaml.safe_load(new)
    assert cfg["container"]["verl_image"] == f"docker://ghcr.io/someone/grlo-verl@{digest}"
    assert cfg["container"]["digest"] is None  # the main image's pin is its own
    C.validate(cfg)
    with pytest.raises(SystemExit, match="no `nosuch:` line"):
        pin(text, "container.nosuch", "docker://x/y:1", digest)


def _gpu_h(x: float) -> str:
    """How the README writes GPU-hours: whole hours from 10, one decimal from 1, two below."""
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def test_readme_first_screen_cost_agrees_with_grlo_forecast():
    """Everything, the headline and the pilot: the README's figures are what `grlo forecast` computes now."""
    from grlo.report import forecast
    from grlo.report.storage import GIB

    readme = (REPO_ROOT / "README.md").read_text()
    first = readme.split("## Quick start", 1)[0]
    table = forecast.load_throughput()
    base = str(REPO_ROOT / "config" / "config.yaml")
    for run, overlay in (("everything", None), ("headline", "headline.yaml"), ("pilot", "pilot.yaml")):
        cfg = C.load([base] + ([str(REPO_ROOT / "config" / overlay)] if overlay else []))
        rows, _ = forecast.plan(cfg, table)
        rows = [r for r in rows if r.get("in_total", True)]  # a stage priced on both engines counts rlvr.engine's row
        mid, lo, hi = (sum(r[k] for r in rows) for k in ("gpu_hours", "gpu_hours_low", "gpu_hours_high"))
        line = next(x for x in first.splitlines() if x.startswith(f"  | {run} |"))
        assert f"**{_gpu_h(mid)}** ({_gpu_h(lo)}-{_gpu_h(hi)})" in line, (run, line, mid, lo, hi)
        assert (f"config/{overlay}" in line) if overlay else line.rstrip().endswith("--config config/config.yaml` |")
        if run == "everything":
            grlo_rlvr = sum(r["gpu_hours"] for r in rows if r["stage"] == "grlo-rlvr")
            assert f"{grlo_rlvr:.0f} of it is the GRLO -> RLVR stage" in line
            assert f"about {mid / 8:.0f} h if every GPU stays busy" in first.replace("\n  ", " ")
            disk = round(forecast.run_storage(cfg)[0] / GIB)
            assert f"everything: about {disk} GiB" in first
            assert f"about {disk} GiB for the paper config" in (REPO_ROOT / "docs" / "gpu.md").read_text()
    assert "no GPU result yet" in first and "1,000 of the paper's 5,000" in first
    assert "none is published yet" in first and "make sif" in first and "Build time: not measured" in first
