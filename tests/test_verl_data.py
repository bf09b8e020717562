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


def benchmark(tmp_path, n=3):
    rows = [{"id": f"m/{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1),
             "prompt": f"What is {i} + 1?\n\nPut your final answer within \\boxed{{}}."} for i in range(n)]
    p = tmp_path / "math500.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p, rows


def convert(tmp_path):
    src, rows = prepared(tmp_path)
    bench, brows = benchmark(tmp_path)
    counts = D.convert(str(src), str(bench), str(tmp_path / "train.parquet"), str(tmp_path / "val.parquet"))
    return counts, rows, brows


def test_round_trip(tmp_path):
    counts, rows, brows = convert(tmp_path)
    assert counts["train"] == 10 and counts["val"] == 3
    train = D.read_verl_rows(str(tmp_path / "train.parquet"))
    assert [D.verl_row(r, i, "train") for i, r in enumerate(rows)] == train
    for i, r in enumerate(rows):
        assert D.prepared_prompt(train, i) == r["prompt"]
        t = train[i]
        assert t["reward_model"] == {"style": "model", "ground_truth": ""} and t["data_source"] == "lighteval/MATH"
        assert t["extra_info"] == {"split": "train", "index": i, "prompt_tokens": 20 + i}


def test_validation_rows_are_rule_scored_math(tmp_path):
    _, _, brows = convert(tmp_path)
    val = D.read_verl_rows(str(tmp_path / "val.parquet"))
    assert [v["prompt"] for v in val] == [[{"role": "user", "content": b["prompt"]}] for b in brows]
    assert {v["data_source"] for v in val} == {"HuggingFaceH4/MATH-500"}
    assert [v["reward_model"] for v in val] == [{"style": "rule", "ground_truth": b["answer"]} for b in brows]
    assert [v["extra_info"]["index"] for v in val] == [0, 1, 2]


def test_bad_rows_name_file_and_line(tmp_path):
    bench, _ = benchmark(tmp_path)
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"prompt": [{"role": "user", "content": "ok"}]}) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(GrloError, match=r"bad\.jsonl.*line 2"):
        D.convert(str(p), str(bench), str(tmp_path / "t.parquet"), str(tmp_path / "v.parquet"))
    assert not (tmp_path / "t.parquet").exists()
    src, _ = prepared(tmp_path)
    noans = tmp_path / "noans.jsonl"
    noans.write_text(json.dumps({"prompt": "What is 1 + 1?"}) + "\n")
    with pytest.raises(GrloError, match=r"noans\.jsonl: line 1.*answer"):
        D.convert(str(src), str(noans), str(tmp_path / "t.parquet"), str(tmp_path / "v.parquet"))
    assert not (tmp_path / "t.parquet").exists()
