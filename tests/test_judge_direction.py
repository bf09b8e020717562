"""AlpacaEval 2 scoring gets the direction right: a judge that prefers the model's output gives preferences near 2,
one that prefers the reference near 1, whatever order alpaca-eval shows the two outputs in; and the length-controlled
win rate equals the value computed from a known preference model (the judge's preferences are a logistic function
of the length difference, so the LC win rate is the intercept's probability, not the raw win rate)."""

import math
import socket
import statistics
import subprocess
import sys
import time

import pytest

from test_eval_judge_server import CHAT, _free_port  # tests/ is on sys.path (pytest rootdir-relative import)

# The local OpenAI-compatible judge of test_eval_judge_server, made to read the AlpacaEval 2 prompt: probability 0.9
# on the identifier ("m" or "M") of the output that contains the word PREFERRED.
_READ = """import re
PAIR = re.compile(r'"model_identifier": "(m|M)",\\s*"output": \"\"\"(.*?)\"\"\"', re.S)
"""
_CHOOSE = """text = "".join(str(m["content"]) for m in req["messages"])
        best = next(i for i, o in PAIR.findall(text) if "PREFERRED" in o)
        other = "m" if best == "M" else "M"
        top = [{"token": best, "logprob": math.log(0.9), "bytes": None},
               {"token": other, "logprob": math.log(0.1), "bytes": None}]"""


def _judge_script() -> str:
    lines = CHAT.split("\n")
    i = next(n for n, line in enumerate(lines) if line.strip().startswith("top = "))
    assert lines[i - 1].strip().startswith("open(sys.argv[2]")
    lines[i - 1:i + 1] = ["        " + _CHOOSE]
    script = _READ + "\n".join(lines)
    for old, new in (('"content": "M"', '"content": best'), ('"token": "M", "logprob": math.log(0.7)',
                                                              '"token": best, "logprob": math.log(0.9)')):
        assert script.count(old) == 1
        script = script.replace(old, new)
    return script


@pytest.fixture
def judge_url(tmp_path, monkeypatch):
    port = _free_port()
    (tmp_path / "judge.py").write_text(_judge_script())
    for var in ("OPENAI_API_KEY", "OPENAI_API_KEYS", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "judge.py"), str(port), str(tmp_path / "models.txt")])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait()


def _pairs(model_preferred: list[bool]):
    refs, outs = [], []
    for i, m in enumerate(model_preferred):
        refs.append({"instruction": f"question {i}", "output": f"reference answer {i}" + ("" if m else " PREFERRED"),
                     "generator": "reference"})
        outs.append({"instruction": f"question {i}", "output": f"model answer {i}" + (" PREFERRED" if m else ""),
                     "generator": "m"})
    return refs, outs


def test_judge_preference_direction(judge_url):
    from grlo.eval.scorers import alpacaeval

    judge = {**alpacaeval.DEFAULT_JUDGE, "model": "local-judge", "base_url": judge_url}
    wins = [True, False, True, True, False, False]
    refs, outs = _pairs(wins)
    prefs = alpacaeval._judge_openai(judge, refs, outs)
    # 2 = the model's output (output_2) wins, 1 = the reference wins (alpaca-eval's scale)
    assert prefs == pytest.approx([1.9 if w else 1.1 for w in wins], abs=1e-6)


def _smoke_alpaca(judge_fn, completions):
    from grlo.data import benchmarks
    from grlo.registry import spec as spec_mod
    from grlo.eval.score import score_generations

    spec = spec_mod.benchmark_spec("alpacaeval2", {"mode": "smoke"})
    rows = benchmarks.load_normalised(spec)
    gens = [{"id": r["id"], "completions": [completions(i)]} for i, r in enumerate(rows)]
    return score_generations(spec, rows, gens, options={"judge_fn": judge_fn, "config": {"mode": "smoke"}})


def test_length_controlled_win_rate_equals_a_known_preference_model():
    a, b = 0.4, -1.5  # logit of the model winning = a + b * tanh(standardised length difference ref - model)

    def judge(refs, outs):
        d = [len(r["output"]) - len(o["output"]) for r, o in zip(refs, outs)]
        sd = statistics.stdev(d)
        return [1.0 + 1.0 / (1.0 + math.exp(-(a + b * math.tanh(x / sd)))) for x in d]

    # the model's answers are all much longer than the references: the judge's raw preference is high
    summary, samples = _smoke_alpaca(judge, lambda i: "An answer " * (40 * i + 60))
    raw = [s["scores"][0] for s in samples]
    assert summary["win_rate"] == pytest.approx(100 * sum(raw) / len(raw))
    assert summary["win_rate"] > 80.0
    # at equal lengths the model wins with probability sigmoid(a): the LC win rate (alpaca-eval's L1-logistic CV fit)
    assert summary["value"] == pytest.approx(100.0 / (1.0 + math.exp(-a)), abs=0.5)
    # and with no length effect (b = 0) both are the constant preference
    summary, _ = _smoke_alpaca(lambda refs, outs: [1.0 + 1.0 / (1.0 + math.exp(-a))] * len(outs),
                               lambda i: "An answer " * (40 * i + 60))
    assert summary["win_rate"] == pytest.approx(100.0 / (1.0 + math.exp(-a)))
    assert summary["value"] == pytest.approx(100.0 / (1.0 + math.exp(-a)), abs=0.5)
