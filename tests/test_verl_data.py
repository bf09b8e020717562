"""Prepared prompts -> verl's parquet schema and back (read with the datasets parquet loader verl 0.6.1 uses)."""

import json

import pytest

from grlo.errors import GrloError
from grlo.train.verl import data as D

pytest.importorskip("pyarrow")
pytest.importorskip("datasets")


def prepared(tmp_path, n=10):
    rows = []
    for i in range(n):
        chat = [{"role": "user", "content": f"Write an essay about topic {i}."}]
        if i % 3 == 0:
            chat.insert(0, {"role": "system", "content": "Be thorough."})
        rows.append({"data_source": "lighteval/MATH", "prompt": chat, "ability": "general",
                     "reward_model": {"style": "model", "ground_truth": ""},
                     "extra_info": {"split": "train", "index": 100 + i, "prompt_tokens": 20 + i}})
    p = tmp_path / "prepared.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p, rows


def test_round_trip(tmp_path):
    src, rows = prepared(tmp_path)
    counts = D.convert(str(src), str(tmp_path / "train.parquet"), str(tmp_path / "val.parquet"), val_size=4, seed=0)
    assert counts["train"] == 10 and counts["val"] == 4
    train = D.read_verl_rows(str(tmp_path / "train.parquet"))
    assert [D.verl_row(r, i, "train") for i, r in enumerate(rows)] == train
    for i, r in enumerate(rows):
        assert D.prepared_prompt(train, i) == r["prompt"]
        t = train[i]
        assert t["reward_model"] == {"style": "model", "ground_truth": ""} and t["data_source"] == "lighteval/MATH"
        assert t["extra_info"] == {"split": "train", "index": i, "prompt_tokens": 20 + i}
    val = D.read_verl_rows(str(tmp_path / "val.parquet"))
    idx = [v["extra_info"]["index"] for v in val]
    assert idx == D.validation_indices(10, 4, 0) and idx == sorted(set(idx))
    assert all(v["extra_info"]["split"] == "val" and v["prompt"] == rows[v["extra_info"]["index"]]["prompt"] for v in val)


def test_validation_sample_is_seeded_and_capped():
    assert D.validation_indices(1000, 256, 0) == D.validation_indices(1000, 256, 0)
    assert D.validation_indices(1000, 256, 0) != D.validation_indices(1000, 256, 1)
    assert D.validation_indices(5, 256, 0) == [0, 1, 2, 3, 4]
    with pytest.raises(GrloError, match="val_prompts"):
        D.validation_indices(5, 0, 0)


def test_bad_row_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"prompt": [{"role": "user", "content": "ok"}]}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(GrloError, match=r"bad\.jsonl.*line 2"):
        D.convert(str(p), str(tmp_path / "t.parquet"), str(tmp_path / "v.parquet"), 1, 0)
    assert not (tmp_path / "t.parquet").exists()
