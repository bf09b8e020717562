"""download-rlvr-data: fixture generation, normalisation, subset, hub parquet path (mocked), one-line errors."""

import json
from pathlib import Path

import pytest

from grlo import cli
from grlo import config as C
from grlo.data import rlvr_data as rd
from grlo.errors import GrloError
from grlo.io import read_jsonl, sha256_file
from grlo.rewards.general_reasoner import correctness_reward

REPO = Path(__file__).resolve().parent.parent
PAPER, SMOKE = REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"


def _overlay(tmp_path, text, name="over.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_fixture_is_deterministic_and_answers_are_exact():
    a, b = rd.generate_fixture(25, seed=3), rd.generate_fixture(25, seed=3)
    assert a == b and a != rd.generate_fixture(25, seed=4)
    assert len({r["id"] for r in a}) == 25
    by_kind = {r["meta"]["kind"]: r for r in a}
    assert set(by_kind) == {"add", "mul", "frac", "linear", "power"}
    # recompute answers from the question text for three kinds
    q = by_kind["add"]["prompt"]  # "What is A + B - C?"
    a_, b_, c_ = [int(t) for t in q.replace("?", "").split() if t.isdigit()]
    assert by_kind["add"]["answer"] == str(a_ + b_ - c_)
    q = by_kind["mul"]["prompt"]
    x, y = [int(t.rstrip(".")) for t in q.split() if t.rstrip(".").isdigit()]
    assert by_kind["mul"]["answer"] == str(x * y)
    # the gold answers are accepted by the shared checker in boxed form
    for r in a:
        assert correctness_reward(r["answer"], f"\\boxed{{{r['answer']}}}") == 1.0
    assert any("\\frac" in r["answer"] for r in a)


def test_linear_fixture_answer_solves_the_equation():
    for r in rd.generate_fixture(40, seed=1):
        if r["meta"]["kind"] != "linear":
            continue
        lhs, rhs = r["prompt"].removeprefix("Solve for x: ").rstrip(".").split(" = ")
        m = int(lhs.split("x")[0])
        c = int(lhs.split("(")[1].rstrip(")"))
        assert m * int(r["answer"]) + c == int(rhs)


def test_normalise_row_variants_and_errors():
    r = rd.normalise_row({"id": 7, "question": " Q? ", "answer": 3, "category": "Physics", "difficulty": "Senior"},
                         0, source="hub", where="x")
    assert r == {"id": "7", "prompt": "Q?", "answer": "3",
                 "meta": {"category": "Physics", "difficulty": "Senior", "source": "hub"}}
    r = rd.normalise_row({"problem": "P", "final_answer": "1", "unique_id": "u1"}, 5, source="s", where="x")
    assert (r["id"], r["prompt"], r["answer"]) == ("u1", "P", "1")
    r = rd.normalise_row({"prompt": [{"role": "user", "content": "chat Q"}], "answer": "2"}, 9, source="s", where="x")
    assert (r["id"], r["prompt"]) == ("s-9", "chat Q")
    with pytest.raises(GrloError, match=r"^f.jsonl: line 4: missing or empty question"):
        rd.normalise_row({"answer": "1"}, 0, source="s", where="f.jsonl: line 4")
    with pytest.raises(GrloError, match="missing or empty answer"):
        rd.normalise_row({"question": "Q", "answer": "  "}, 0, source="s", where="w")


def _write(path, lines):
    path.write_text("".join(lines))
    return path


def test_load_rows_bad_row_names_file_and_line(tmp_path):
    good = json.dumps({"id": "a", "prompt": "p", "answer": "1"}) + "\n"
    p = _write(tmp_path / "t.jsonl", [good, json.dumps({"id": "b", "prompt": "p", "answer": ""}) + "\n"])
    with pytest.raises(GrloError) as e:
        rd.load_rows(p)
    assert str(e.value) == f"{p}: line 2: field 'answer' must be a non-empty string"
    assert "\n" not in str(e.value)
    p = _write(tmp_path / "t.jsonl", [good, "{not json\n"])
    with pytest.raises(GrloError, match=r"t.jsonl: line 2: malformed JSON"):
        rd.load_rows(p)
    p = _write(tmp_path / "t.jsonl", [good, good])
    with pytest.raises(GrloError, match=r"line 2: duplicate id 'a'"):
        rd.load_rows(p)
    p = _write(tmp_path / "t.jsonl", [json.dumps({"id": "a", "prompt": "p", "answer": "1", "meta": [1]}) + "\n"])
    with pytest.raises(GrloError, match=r"line 1: field 'meta' must be an object"):
        rd.load_rows(p)
    with pytest.raises(GrloError, match="no rows"):
        rd.load_rows(_write(tmp_path / "empty.jsonl", ["\n"]))


def test_smoke_command_writes_rows_and_stats(tmp_path):
    out, stats = tmp_path / "data/rlvr/train.jsonl", tmp_path / "data/rlvr/stats.json"
    rc = cli.main(["download-rlvr-data", "--config", str(PAPER), str(SMOKE), "--output", str(out), "--stats", str(stats)])
    assert rc == 0
    rows, st = read_jsonl(out), json.loads(stats.read_text())
    cfg = C.load([PAPER, SMOKE])
    assert st["count"] == len(rows) == cfg["rlvr"]["data"]["fixture"]["count"]
    assert st["sha256"] == sha256_file(out) and st["source"] == "fixture"
    assert sum(st["by_kind"].values()) == len(rows)
    assert rd.load_rows(out) == rows  # the trainer's reader accepts what the command writes
    # same config -> byte-identical file
    out2 = tmp_path / "again.jsonl"
    cli.main(["download-rlvr-data", "--config", str(PAPER), str(SMOKE), "--output", str(out2), "--stats", str(stats)])
    assert out2.read_bytes() == out.read_bytes()


def test_subset_is_a_seeded_sample(tmp_path):
    cfg = C.load([PAPER, SMOKE])
    cfg["rlvr"]["data"].update(subset=5, fixture={"count": 30, "seed": 0})
    rows, st = rd.build(cfg)
    assert (st["available"], st["count"], len(rows)) == (30, 5, 5)
    full = {r["id"] for r in rd.generate_fixture(30, 0)}
    assert {r["id"] for r in rows} <= full
    cfg["rlvr"]["data"]["subset"] = None
    all_rows, _ = rd.build(cfg)
    assert all_rows[:5] == rows  # a subset is a prefix of the same seeded shuffle (nested subsets)
    assert [r["id"] for r in all_rows] != sorted(full)  # shuffled, not the generator's order
    cfg["rlvr"]["data"]["subset"] = 5
    cfg["rlvr"]["data"]["seed"] = 1
    rows_other, _ = rd.build(cfg)
    assert [r["id"] for r in rows_other] != [r["id"] for r in rows]


def test_hub_source_reads_parquet_at_resolved_revision(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    snap = tmp_path / "snap" / "data"
    snap.mkdir(parents=True)
    table = pa.table({"id": ["q1", "q2", "q3"], "question": ["What is 1+1?", "Name a prime.", ""],
                      "answer": ["2", "7", "x"], "answer_type": ["Integer", "Integer", "String"],
                      "category": ["Mathematics", "Mathematics", "Other"], "difficulty": ["Primary", "Senior", "x"]})
    pq.write_table(table, snap / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 1), snap / "test-00000-of-00001.parquet")
    calls = {}

    def fake_snapshot(repo_id, repo_type, revision, allow_patterns):
        calls.update(repo_id=repo_id, repo_type=repo_type, revision=revision)
        return str(tmp_path / "snap")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(rd, "_resolve_revision", lambda repo, rev: "a" * 40)
    cfg = C.load([PAPER])
    rows, st = rd.build(cfg)  # paper config: on_invalid=drop -> the empty question is counted and dropped
    assert calls == {"repo_id": "TIGER-Lab/WebInstruct-verified", "repo_type": "dataset", "revision": "a" * 40}
    assert st["revision"] == "a" * 40 and st["revision_requested"] is None
    assert (st["count"], st["invalid_dropped"]) == (2, 1)
    assert {r["id"] for r in rows} == {"q1", "q2"}
    assert st["by_answer_type"] == {"Integer": 2}
    cfg["rlvr"]["data"]["on_invalid"] = "error"
    with pytest.raises(GrloError, match=r"TIGER-Lab/WebInstruct-verified@aaaaaaaaaaaa:train row 2: missing or empty"):
        rd.build(cfg)


def test_file_source_and_config_errors(tmp_path):
    src = _write(tmp_path / "mine.jsonl", [json.dumps({"question": "Q1", "answer": "1"}) + "\n",
                                           json.dumps({"question": "Q2"}) + "\n"])
    over = _overlay(tmp_path, f"rlvr:\n  data:\n    source: file\n    path: {src}\n")
    cfg = C.load([PAPER, over])
    cfg["rlvr"]["data"]["on_invalid"] = "error"
    with pytest.raises(GrloError, match=r"mine.jsonl: line 2: missing or empty answer"):
        rd.build(cfg)
    cfg["rlvr"]["data"]["on_invalid"] = "drop"
    rows, st = rd.build(cfg)
    assert len(rows) == 1 and st["invalid_dropped"] == 1 and st["sha256"] == sha256_file(src)
    bad = _overlay(tmp_path, "rlvr:\n  data:\n    subset: 0\n", "bad.yaml")
    with pytest.raises(GrloError, match=r"rlvr.data.subset"):
        C.load([PAPER, bad])
    # CLI turns a GrloError into exit code 2 and writes nothing
    out = tmp_path / "o.jsonl"
    cfg_file = _overlay(tmp_path, "rlvr:\n  data:\n    source: file\n    path: null\n", "nopath.yaml")
    assert cli.main(["download-rlvr-data", "--config", str(PAPER), str(cfg_file), "--output", str(out),
                     "--stats", str(tmp_path / "s.json")]) == 2
    assert not out.exists()
