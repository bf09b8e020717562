"""Prompt download (checksums) and preparation (validation errors, length filter, dedup, stats)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grlo.data import FIXTURES
from grlo.download import copy_verified
from grlo import config as C
from grlo.data.prompts_prepare import check_unique_index, percentiles, prepare, validate_row
from grlo.errors import GrloError
from grlo.io import iter_jsonl

ROOT = Path(__file__).resolve().parent.parent
# The official release (not committed): GRLO_OFFICIAL_PROMPTS=path, else a paper-mode download in this checkout.
OFFICIAL = Path(os.environ.get("GRLO_OFFICIAL_PROMPTS") or ROOT / "data" / "prompts" / "raw.jsonl")


def _row(content="Explain tides.", role="user"):
    return {"data_source": "x", "prompt": [{"role": role, "content": content}], "ability": "general",
            "reward_model": {"style": "model", "ground_truth": ""}, "extra_info": {"split": "train", "index": 0}}


def test_smoke_fixture_has_the_official_format():
    rows = [r for _, r in iter_jsonl(FIXTURES / "grlo_prompts_smoke.jsonl")]
    assert len(rows) >= 32
    for i, r in enumerate(rows, 1):
        validate_row(r, "fixture", i)
    if OFFICIAL.is_file():  # same keys as the official release
        first = json.loads(OFFICIAL.read_text().splitlines()[0])
        assert set(first) == set(rows[0])


@pytest.mark.parametrize(
    "row, msg",
    [
        ({"data_source": "x"}, "missing field 'prompt'"),
        ({"prompt": "just a string"}, "non-empty list"),
        ({"prompt": [{"role": "robot", "content": "hi"}]}, "prompt[0].role is 'robot'"),
        ({"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "last message must have role 'user'"),
        ({"prompt": [{"role": "user", "content": "   "}]}, "empty"),
        ({"prompt": [{"role": "user"}]}, "string 'content'"),
    ],
)
def test_validation_errors_name_file_and_line(row, msg):
    with pytest.raises(GrloError) as e:
        validate_row(row, "prompts.jsonl", 7)
    assert str(e.value).startswith("prompts.jsonl: line 7: ") and msg in str(e.value)


def test_malformed_json_names_the_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps(_row()) + "\n{not json\n")
    with pytest.raises(GrloError, match=r"p.jsonl: line 2: malformed JSON"):
        list(iter_jsonl(p))


def test_prepare_filters_long_and_duplicate_prompts():
    rows = [_row("a b c"), _row("A  b c "), _row("one two three four five six"), _row("d e")]
    kept, stats = prepare(list(enumerate(rows, 1)), "p", lambda msgs: len(msgs[-1]["content"].split()), max_tokens=4)
    assert [r["prompt"][0]["content"] for r in kept] == ["a b c", "d e"]
    assert stats["count"] == 2 and stats["count_in"] == 4
    assert stats["dropped_duplicates"] == 1 and stats["dropped_overlong"] == 1
    assert stats["token_length"]["max"] == 3 and kept[0]["extra_info"]["prompt_tokens"] == 3


def test_prepare_with_nothing_left_is_an_error():
    with pytest.raises(GrloError, match="no prompt left"):
        prepare([(1, _row("x y z"))], "p", lambda m: 10, max_tokens=4)


def test_percentiles_nearest_rank():
    vals = list(range(1, 101))
    assert percentiles(vals) == {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
    assert percentiles([7]) == {"p50": 7, "p90": 7, "p95": 7, "p99": 7}


def test_checksum_mismatch_stops_and_leaves_no_output(tmp_path):
    src = tmp_path / "src.jsonl"
    src.write_text(json.dumps(_row()) + "\n")
    dest = tmp_path / "out" / "raw.jsonl"
    with pytest.raises(GrloError, match="checksum mismatch"):
        copy_verified(src, dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.glob("*"))
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    assert copy_verified(src, dest, good) == good and dest.read_bytes() == src.read_bytes()


def test_download_prompts_cli_checksum_mismatch(tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text(json.dumps(_row()) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("prompts: {url: null, path: %s, sha256: \"%s\"}\n" % (src, "1" * 64))
    out = tmp_path / "raw.jsonl"
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "download-prompts", "--config", str(ROOT / "config/config.yaml"), str(cfg),
                        "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "checksum mismatch" in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists() and not out.with_suffix(".jsonl.source.json").exists()


@pytest.mark.skipif(not OFFICIAL.is_file(), reason="official prompt file not present (set GRLO_OFFICIAL_PROMPTS)")
def test_official_release_validates_and_matches_its_published_checksum():
    from grlo.io import sha256_file
    import yaml

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert sha256_file(OFFICIAL) == cfg["prompts"]["sha256"]
    rows = list(iter_jsonl(OFFICIAL))
    assert len(rows) == 1000 == C.pinned_prompt_count(cfg["prompts"]["sha256"])  # the dry run's count is the file's
    for lineno, r in rows:
        validate_row(r, str(OFFICIAL), lineno)
    check_unique_index(rows, str(OFFICIAL))


def test_unique_index_check():
    rows = [(1, _row()), (2, {**_row(), "extra_info": {"index": "b"}}), (3, {**_row(), "extra_info": {}})]
    check_unique_index(rows, "p.jsonl")  # distinct or absent indices pass
    with pytest.raises(GrloError, match=r"p.jsonl: line 4: duplicate extra_info.index 'b' \(first at line 2\)"):
        check_unique_index(rows + [(4, {**_row(), "extra_info": {"index": "b"}})], "p.jsonl")
    with pytest.raises(GrloError, match="extra_info.index must be an integer or a string"):
        validate_row({**_row(), "extra_info": {"index": [1]}}, "p.jsonl", 1)
