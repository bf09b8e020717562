"""Generation back-ends: greedy determinism, sampling seeds, stop strings, presence penalty, vLLM settings mapping."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grlo.errors import GrloError
from grlo.generation import PresencePenalty, Request, Sampling, TransformersBackend, truncate_at_stop, vllm_sampling_kwargs
from grlo.models.tiny import build_tiny_policy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    build_tiny_policy(d, seed=1)
    return str(d)


REQS = [Request([{"role": "user", "content": "Explain the water cycle."}]),
        Request([{"role": "user", "content": "Write a plan."}]),
        Request([{"role": "user", "content": "Compare two methods for a small project with a long and detailed answer."}])]


def test_greedy_generation_is_identical_across_runs_and_batch_sizes(tiny_policy):
    s = Sampling(temperature=0.0, max_tokens=12)
    a = TransformersBackend(tiny_policy, batch_size=3).generate(REQS, s, progress=False)
    b = TransformersBackend(tiny_policy, batch_size=3).generate(REQS, s, progress=False)
    assert [[c.text for c in cs] for cs in a] == [[c.text for c in cs] for cs in b]
    assert all(c.num_tokens <= 12 and c.finish_reason in ("stop", "length") for cs in a for c in cs)
    # left padding must not change greedy outputs: one prompt per batch gives the same texts
    c = TransformersBackend(tiny_policy, batch_size=1).generate(REQS, s, progress=False)
    assert [[x.text for x in cs] for cs in a] == [[x.text for x in cs] for cs in c]


def test_sampling_is_seeded_and_returns_n(tiny_policy):
    be = TransformersBackend(tiny_policy, batch_size=2)
    s = Sampling(temperature=1.0, top_p=0.9, top_k=50, max_tokens=10, n=3, seed=7)
    a = be.generate(REQS, s, progress=False)
    b = be.generate(REQS, s, progress=False)
    assert all(len(cs) == 3 for cs in a)
    assert [[c.text for c in cs] for cs in a] == [[c.text for c in cs] for cs in b]
    other = be.generate(REQS, Sampling(temperature=1.0, max_tokens=10, n=3, seed=8), progress=False)
    assert [[c.text for c in cs] for cs in a] != [[c.text for c in cs] for cs in other]


def test_truncate_at_stop_takes_the_earliest_stop():
    assert truncate_at_stop("abc END def STOP", ("STOP", "END")) == ("abc ", True)
    assert truncate_at_stop("abc", ("X",)) == ("abc", False)
    assert truncate_at_stop("abc", ()) == ("abc", False)


def test_presence_penalty_matches_vllm_semantics():
    scores = torch.zeros(2, 6)
    ids = torch.tensor([[5, 1, 2, 2], [5, 3, 3, 4]])  # first token is the prompt (prompt_len=1)
    out = PresencePenalty(1.5, prompt_len=1)(ids, scores)
    expected = torch.zeros(2, 6)
    expected[0, [1, 2]] = -1.5  # once per distinct token, however often it appeared
    expected[1, [3, 4]] = -1.5
    assert torch.equal(out, expected)  # the prompt token 5 is not penalised


def test_vllm_mapping():
    kw = vllm_sampling_kwargs(Sampling(temperature=0.7, top_p=0.8, top_k=20, max_tokens=100, n=4, seed=3,
                                       presence_penalty=1.5, stop=("</answer>",)))
    assert kw == {"n": 4, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 100, "seed": 3,
                  "presence_penalty": 1.5, "stop": ["</answer>"]}
    assert vllm_sampling_kwargs(Sampling(top_k=0))["top_k"] == -1  # "off" is -1 in vLLM
    assert vllm_sampling_kwargs(Sampling())["stop"] is None


def test_invalid_sampling_is_rejected():
    with pytest.raises(GrloError):
        Sampling(top_p=0)
    with pytest.raises(GrloError):
        Sampling(max_tokens=0)


def test_vllm_backend_without_vllm_gives_a_clear_error():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm installed")
    except ImportError:
        pass
    from grlo.generation import VLLMBackend

    with pytest.raises(GrloError, match="vLLM is not installed"):
        VLLMBackend("/nonexistent")


def test_generate_cli_writes_outputs_and_meta(tiny_policy, tmp_path):
    data = tmp_path / "b.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Explain item {i}.", "answer": "1"}) + "\n" for i in range(3)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("evaluation: {overrides: {math500: {max_tokens: 6, limit: 2}}}\n")
    out = tmp_path / "g" / "math500.jsonl"
    data.rename(tmp_path / "math500.jsonl")
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "generate", "--config", str(ROOT / "config/config.yaml"),
                        str(ROOT / "config/smoke.yaml"), str(cfg), "--model", "qwen3-4b-base--base", "--model-dir", tiny_policy,
                        "--benchmarks", "math500", "--data-dir", str(tmp_path), "--output-dir", str(out.parent)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in rows] == ["p0", "p1"]  # limit applied
    assert all(len(x["completions"]) == 1 and x["completion_tokens"][0] <= 6 for x in rows)
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["sampling"]["max_tokens"] == 6 and meta["backend"] == "transformers" and meta["versions"]["torch"]


def test_generate_cli_rejects_bad_rows_before_loading_a_model(tmp_path):
    (tmp_path / "math500.jsonl").write_text('{"id": "a", "prompt": "ok"}\n{"id": "b"}\n')
    r = subprocess.run([sys.executable, "-m", "grlo.cli", "generate", "--config", str(ROOT / "config/config.yaml"),
                        str(ROOT / "config/smoke.yaml"), "--model", "qwen3-4b-base--base", "--model-dir", "/nonexistent",
                        "--benchmarks", "math500", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "g")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "math500.jsonl: line 2: row needs 'id' and a string 'prompt'" in r.stderr
    assert not (tmp_path / "g").exists()
