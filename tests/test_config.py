"""Config loading and schema validation: valid configs load, invalid values give one line naming key, value, allowed."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grlo import config as C
from grlo.errors import GrloError

ROOT = Path(__file__).resolve().parent.parent
PAPER, SMOKE = ROOT / "config/config.yaml", ROOT / "config/smoke.yaml"


def test_paper_and_smoke_configs_validate():
    paper = C.load([PAPER])
    smoke = C.load([PAPER, SMOKE])
    assert paper["mode"] == "paper" and smoke["mode"] == "smoke"
    assert smoke["outdir"] and not paper["outdir"]  # smoke never writes into results/
    assert smoke["generation"]["backend"] == "transformers"


def test_overlay_is_a_deep_merge():
    merged = C.deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"c": 3}})
    assert merged == {"a": {"b": 1, "c": 3}, "d": 1}


def _write(tmp_path, over: dict) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(over))
    return p


@pytest.mark.parametrize(
    "over, expected",
    [
        ({"mode": "laptop"}, ["'mode'", '"laptop"', "'paper', 'smoke'"]),
        ({"generation": {"backend": "tgi"}}, ["'generation.backend'", '"tgi"', "'vllm', 'transformers'"]),
        ({"prompts": {"max_prompt_tokens": 0}}, ["'prompts.max_prompt_tokens'", "0", "minimum 1"]),
        ({"resources": {"gpus_train": "four"}}, ["'resources.gpus_train'", '"four"', "type integer"]),
        ({"generation": {"vllm": {"gpu_memory_utilization": 1.5}}}, ["gpu_memory_utilization", "1.5", "maximum 1"]),
        ({"typo_key": 1}, ["unknown key 'typo_key'", "known keys"]),
        # checks the schema cannot express: registry names and the pinned prompt count (issue 11 item 4)
        ({"evaluation": {"benchmarks": ["math500", "mmlu"]}}, ["evaluation.benchmarks[1]", "unknown benchmark 'mmlu'"]),
        ({"evaluation": {"overrides": {"math50": {"k": 2}}}}, ["evaluation.overrides.math50", "unknown benchmark"]),
        ({"report": {"competition_math": ["aime26"]}}, ["report.competition_math[0]", "'aime26'"]),
        ({"backbones": {"extra": ["qwen9"]}}, ["backbones.extra[0]", "unknown model 'qwen9'"]),
        ({"evaluation": {"released": ["qwen4--thinking"]}}, ["evaluation.released[0]", "unknown model 'qwen4'"]),
        ({"grlo": {"adapt_batch_size": False}}, ["grlo.train_batch_size", "1000 prompts", "adapt_batch_size: true"]),
    ],
)
def test_invalid_values_name_key_value_and_allowed(tmp_path, over, expected):
    with pytest.raises(GrloError) as e:
        C.load([PAPER, _write(tmp_path, over)])
    msg = str(e.value)
    assert "\n" not in msg and "bad.yaml" in msg
    for part in expected:
        assert part in msg, msg


def test_unparsable_yaml_is_one_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("mode: [unclosed\n")
    with pytest.raises(GrloError, match="broken.yaml: cannot parse config"):
        C.load([p])


def test_cli_bad_config_exits_nonzero_with_one_line_and_writes_nothing(tmp_path):
    bad = _write(tmp_path, {"mode": "laptop"})
    out = tmp_path / "raw.jsonl"
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "download-prompts", "--config", str(PAPER), str(bad), "--output", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "invalid value for 'mode'" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_config_hash_is_stable_and_sensitive():
    a = {"x": 1, "y": [1, 2]}
    assert C.config_hash(a) == C.config_hash({"y": [1, 2], "x": 1})
    assert C.config_hash(a) != C.config_hash({"x": 2, "y": [1, 2]})



def test_pinned_count_applies_only_to_the_pinned_file(tmp_path):
    # the user's own file (the full 5K): its count is not known before preparing, train.sh's batch stays
    cfg = C.load([PAPER, _write(tmp_path, {"grlo": {"adapt_batch_size": False}, "prompts": {"path": "my5k.jsonl",
                                                                                          "url": None, "sha256": None}})])
    assert cfg["grlo"]["train_batch_size"] == 1024
    assert C.pinned_prompt_count("80463c5ec34f3fed7d1db6c9fb2c6b66fc00dca7d021c6f045edeb42b02c8930") == 1000
    assert C.pinned_prompt_count(None) is None


def test_default_paper_config_adapts_on_the_public_file_and_keeps_train_sh_sizes_on_5k():
    """Out of the box the paper config runs on the public 1,000 prompts (batch and mini-batches shrink, recorded as
    `adapted`); a 5K file gets train.sh's exact 1024 / 256."""
    from grlo.train.batching import resolve_batch_sizes

    g = C.load([PAPER])["grlo"]
    assert g["adapt_batch_size"] is True
    public = resolve_batch_sizes(g, 1000, 4)
    assert public["adapted"] and public["train_batch_size"] < 1000
    assert public["train_batch_size"] // public["actor_mini"] == 1024 // 256  # same optimizer steps per batch
    full = resolve_batch_sizes(g, 5000, 4)
    assert full["adapted"] is None and (full["train_batch_size"], full["actor_mini"]) == (1024, 256)


def _dry_run(tmp_path, *args, cwd=None):
    import os
    import shutil

    snakemake = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    return subprocess.run([snakemake, "-n", "--nolock", "--cores", "1", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})


@pytest.mark.parametrize(
    "over, expected",
    [
        ({"evaluation": {"overrides": {"math50": {"k": 2}}}}, "evaluation.overrides.math50: unknown benchmark 'math50'"),
        ({"grlo": {"adapt_batch_size": False}}, "grlo.train_batch_size: train_batch_size 1024 is larger than the 1000"),
    ],
)
def test_dry_run_fails_before_any_download(tmp_path, over, expected):
    r = _dry_run(tmp_path, "--configfile", str(_write(tmp_path, over)), "--config", f"outdir={tmp_path}")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and expected in out and "Traceback" not in out, out[-3000:]
    assert not list(tmp_path.rglob("*.json"))  # nothing written, not even the resolved config


def test_yaml_error_through_snakemake_names_the_file(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((ROOT / "config/config.yaml").read_text() + "\nbroken: [\n")
    r = _dry_run(tmp_path, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "config/config.yaml: cannot parse config: line" in out, out[-3000:]
    assert "Traceback" not in out
