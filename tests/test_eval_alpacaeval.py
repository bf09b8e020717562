"""AlpacaEval 2 with the hub offline: alpaca-eval's own annotator and LC code against a stub OpenAI-compatible judge
server started by the scorer; df_gamed.csv read from beside the prepared benchmark file; annotations cached per model
so a second run makes zero judge calls; no judge = "not run (no judge)"."""

import json
import sys
from pathlib import Path

import pytest

from grlo.errors import GrloError
from grlo.eval.scorers import alpacaeval

STUB = r'''
import json, math, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def _send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        self._send({"data": [{"id": sys.argv[2]}]})
    def do_POST(self):
        n = int(self.headers["Content-Length"]); req = json.loads(self.rfile.read(n))
        open(sys.argv[3], "a").write(json.dumps({"model": req["model"], "logprobs": req.get("logprobs")}) + "\n")
        text = json.dumps(req["messages"])
        p_m = 0.8 if "LONG" in text else 0.3  # the stub prefers outputs that contain LONG
        top = [{"token": "m", "logprob": math.log(p_m), "bytes": None},
               {"token": "M", "logprob": math.log(1 - p_m), "bytes": None}]
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": req["model"],
                    "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "m"},
                                 "logprobs": {"content": [{"token": "m", "logprob": math.log(p_m), "bytes": None,
                                                           "top_logprobs": top}]}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
    def log_message(self, *a):
        sys.stderr.write("stub judge: " + (a[0] % a[1:]) + "\n")
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

N = 6


def _setup(tmp_path, monkeypatch, judge=None):
    for var in ("OPENAI_API_KEY", "OPENAI_API_KEYS", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import huggingface_hub

    def no_network(*a, **kw):
        raise AssertionError(f"scoring touched the hub: {a} {kw}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.chdir(tmp_path)
    script, calls = tmp_path / "stub.py", tmp_path / "calls.jsonl"
    script.write_text(STUB)
    data = tmp_path / "data" / "benchmarks" / "alpacaeval2.jsonl"
    data.parent.mkdir(parents=True)
    problems = [{"id": str(i), "index": i, "problem": f"Question {i}?", "reference": "A reference answer " * (i + 1)}
                for i in range(N)]
    data.write_text("".join(json.dumps(p) + "\n" for p in problems))
    # alpaca-eval's df_gamed.csv shape (model, index, instruction_difficulty, preference, std_delta_len,
    # not_gamed_baseline): a small stand-in beside the prepared file, where download-benchmark puts the pinned copy.
    rows = ["model,index,instruction_difficulty,preference,std_delta_len,not_gamed_baseline"]
    rows += [f"gpt4_1106_preview,{i},{0.1 * (i - 2):.2f},{1.5},{0.0},True" for i in range(N)]
    rows += [f"gamed_{g},{i},{0.1 * (i - 2):.2f},{1.2 + 0.1 * g},{0.3 * g - 0.2},False" for g in range(3) for i in range(N)]
    (data.parent / "alpacaeval2.df_gamed.csv").write_text("\n".join(rows) + "\n")
    judge = judge or {"kind": "openai", "model": "stub-judge", "annotator": "weighted_alpaca_eval_vllm_llama3_70b",
                      "serve": {"command": [sys.executable, str(script), "{port}", "stub-judge", str(calls)],
                                "startup_timeout_s": 60}}
    cfg = {"mode": "paper", "evaluation": {"judge": judge}}
    out = tmp_path / "scores" / "m" / "alpacaeval2.json"
    out.parent.mkdir(parents=True)
    log = tmp_path / "logs" / "score" / "m" / "alpacaeval2.judge.log"
    log.parent.mkdir(parents=True)
    options = {"config": cfg, "model": "m", "output": str(out), "data_path": str(data), "judge_log": str(log)}
    completions = [[("LONG answer " if i % 2 else "short ") * (i + 1)] for i in range(N)]
    return problems, completions, options, calls, log


def _n_calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_offline_scoring_with_a_stub_judge_caches_and_a_rerun_makes_zero_calls(tmp_path, monkeypatch):
    problems, completions, options, calls, log = _setup(tmp_path, monkeypatch)
    spec = {"name": "alpacaeval2"}
    first = alpacaeval.score(spec, problems, completions, options)
    assert _n_calls(calls) == N
    assert all(json.loads(l)["model"] == "stub-judge" and json.loads(l)["logprobs"] for l in calls.read_text().splitlines())
    s = first.summary
    assert 0.0 <= s["value"] <= 100.0 and s["lc_offline_substitute"] is False  # df_gamed.csv: length_controlled_v1
    assert s["judge"]["model"] == "stub-judge" and s["judge"]["paper_judge"] is False
    cache = Path(s["judge"]["annotations"])
    assert cache.is_file() and cache.parent == Path(options["output"]).parent and len(json.loads(cache.read_text())) == N
    assert "stub judge:" in log.read_text()  # the judge server's log is kept
    # the preferences are the stub's token probabilities (alpaca-eval may swap the pair's order to debias)
    wins = [r["scores"][0] for r in first.records]
    assert all(min(abs(w - x) for x in (0.2, 0.3, 0.7, 0.8)) < 1e-6 for w in wins), wins

    # the rerun needs no judge at all: a judge command that cannot start must not matter
    serve = options["config"]["evaluation"]["judge"]["serve"]
    working, serve["command"] = serve["command"], [sys.executable, "-c", "raise SystemExit(3)"]
    second = alpacaeval.score(spec, problems, completions, options)
    assert _n_calls(calls) == N  # every annotation came from the cache
    assert second.summary["value"] == pytest.approx(s["value"])
    assert [r["scores"][0] for r in second.records] == pytest.approx(wins)

    completions[0] = ["a new answer"]  # one new pair: the judge is started and asked for that one only
    with pytest.raises(GrloError, match="exited with status 3"):
        alpacaeval.score(spec, problems, completions, options)
    serve["command"] = working
    alpacaeval.score(spec, problems, completions, options)
    assert _n_calls(calls) == N + 1
    other = {**options["config"]["evaluation"]["judge"], "model": "another-judge"}
    assert alpacaeval.annotations_path(options["output"], other) != str(cache)  # another judge: another cache


def test_missing_df_gamed_stops_before_any_judge_call(tmp_path, monkeypatch):
    problems, completions, options, calls, _ = _setup(tmp_path, monkeypatch)
    (Path(options["data_path"]).parent / "alpacaeval2.df_gamed.csv").unlink()
    with pytest.raises(GrloError, match="df_gamed.csv.*download-benchmark") as e:
        alpacaeval.score({"name": "alpacaeval2"}, problems, completions, options)
    assert "\n" not in str(e.value) and _n_calls(calls) == 0


@pytest.mark.parametrize("judge, reason", [
    ({"kind": "none"}, "kind is none"),
    ({"kind": "openai", "model": "gpt-4-1106-preview", "annotator": "weighted_alpaca_eval_gpt4_turbo", "serve": None},
     "shut down on 2026-10-23"),
    ({"kind": "openai", "model": "some-api-model", "serve": None}, "OPENAI_API_KEY"),
])
def test_no_judge_is_a_not_run_cell(tmp_path, monkeypatch, judge, reason):
    from grlo.registry import spec as spec_mod
    from grlo.eval.score import score_generations

    problems, completions, options, _, _ = _setup(tmp_path, monkeypatch, judge=judge)
    spec = spec_mod.benchmark_spec("alpacaeval2", {"mode": "paper"})
    gens = [{"id": p["id"], "completions": c} for p, c in zip(problems, completions)]
    summary, _ = score_generations(spec, problems, gens, options=options)
    assert summary["value"] is None and summary["status"] == "not run (no judge)"
    assert reason in summary["not_run_reason"]
    assert summary["judge"]["paper_judge"] is (judge.get("model") == "gpt-4-1106-preview")


def test_default_judge_is_local_open_weights_with_its_agreement_source():
    j = alpacaeval.judge_settings({})
    assert j["kind"] == "openai" and j["serve"]["model_path"] == j["model"] and not alpacaeval.is_paper_judge(j)
    assert "evaluators_leaderboard.csv" in alpacaeval.judge_record(j)["agreement"]
    import alpaca_eval  # the annotator ships with alpaca-eval and reads logprobs

    conf = Path(alpaca_eval.__file__).parent / "evaluators_configs" / j["annotator"] / "configs.yaml"
    text = conf.read_text()
    assert "logprob_parser" in text and "logprobs: true" in text
    board = (Path(alpaca_eval.__file__).parent / "leaderboards/evaluators/evaluators_leaderboard.csv").read_text()
    row = next(l for l in board.splitlines() if l.startswith("alpaca_eval_llama3_70b_fn,"))
    assert row.split(",")[1].startswith("67.5")


def test_download_benchmark_fetches_df_gamed_at_the_pinned_revision_beside_the_data(tmp_path, monkeypatch):
    """The download rule prefetches alpaca-eval's df_gamed.csv with the rows (same repo, same revision), verifies and
    records its sha256, and writes it where the scorer reads it."""
    import argparse

    import huggingface_hub
    import yaml

    from grlo.data import benchmarks

    rows_file, gamed = tmp_path / "alpaca_eval_gpt4_baseline.json", tmp_path / "df_gamed.csv"
    rows_file.write_text(json.dumps([{"instruction": f"q{i}", "output": "ref", "generator": "gpt4_1106_preview"}
                                     for i in range(805)]))
    gamed.write_text("model,index,instruction_difficulty\nx,0,0.1\n")
    calls = []

    def fake_download(repo, filename, repo_type=None, revision=None):
        calls.append((repo, filename, revision))
        return str({"alpaca_eval_gpt4_baseline.json": rows_file, "df_gamed.csv": gamed}[filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"lock": {"frozen": False, "path": str(tmp_path / "lock.yaml")}}))
    lock_data = {"benchmarks": {"alpacaeval2": {"repo": "tatsu-lab/alpaca_eval", "revision": "a" * 40, "files": {}}}}
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(lock_data))
    out = tmp_path / "data" / "benchmarks" / "alpacaeval2.jsonl"
    root = Path(__file__).resolve().parent.parent
    benchmarks.run(argparse.Namespace(benchmark="alpacaeval2", output=str(out),
                                      config=[str(root / "config/config.yaml"), str(cfg_file)]))
    assert calls == [("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline.json", "a" * 40),
                     ("tatsu-lab/alpaca_eval", "df_gamed.csv", "a" * 40)]
    beside = out.with_name("alpacaeval2.df_gamed.csv")
    assert beside.read_text() == gamed.read_text()
    assert alpacaeval.support_file({"data_path": str(out)}, "df_gamed.csv") == beside
    locked = yaml.safe_load((tmp_path / "lock.yaml").read_text())["benchmarks"]["alpacaeval2"]["files"]
    assert set(locked) == {"alpaca_eval_gpt4_baseline.json", "df_gamed.csv"}
    meta = json.loads(out.with_name("alpacaeval2.meta.json").read_text())
    assert meta["count"] == 805 and meta["source"]["support_files"] == {"df_gamed.csv": str(beside)}
