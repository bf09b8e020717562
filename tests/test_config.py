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
