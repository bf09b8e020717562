"""`grlo generate` resumes per benchmark after a kill: finished benchmarks come back, only the rest is generated,
and the result equals an uninterrupted run; a changed setting regenerates."""

import json
import shutil
from pathlib import Path

import pytest

from grlo import generation
from grlo.cli import main
from grlo.models.tiny import build_tiny_policy

ROOT = Path(__file__).resolve().parent.parent
CFG = [str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "smoke.yaml")]


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    build_tiny_policy(d, seed=1)
    return str(d)


def _data(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for bench in ("math500", "aime24"):  # different sampling (smoke overrides): two generation groups
        (d / f"{bench}.jsonl").write_text("".join(json.dumps({"id": f"{bench}-{i}", "prompt": f"Add {i} and 2.",
                                                              "answer": str(i + 2)}) + "\n" for i in range(3)))
    return d


def _generate(policy, data, out, extra=()):
    return main(["generate", "--config", *CFG, *extra, "--model", "qwen3-4b-base--base", "--model-dir", policy,
                 "--benchmarks", "math500", "aime24", "--data-dir", str(data), "--output-dir", str(out)])


def test_killed_generation_resumes_per_benchmark(tiny_policy, tmp_path, monkeypatch):
    data = _data(tmp_path / "data")
    assert _generate(tiny_policy, data, tmp_path / "reference") == 0  # uninterrupted
    calls = []
    real = generation.TransformersBackend.generate

    def killed_on_second(self, reqs, s):
        calls.append(len(reqs))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job is killed while the second benchmark generates
        return real(self, reqs, s)

    monkeypatch.setattr(generation.TransformersBackend, "generate", killed_on_second)
    out = tmp_path / "run"
    assert _generate(tiny_policy, data, out) == 130
    first = sorted(p.name for p in out.glob("*.jsonl"))
    assert len(first) == 1 and (out / ".resume").is_dir()
    for p in out.glob("*.json*"):  # Snakemake removes a failed job's outputs before the retry
        p.unlink()
    calls.clear()
    monkeypatch.setattr(generation.TransformersBackend, "generate", lambda self, reqs, s: calls.append(len(reqs))
                        or real(self, reqs, s))
    assert _generate(tiny_policy, data, out) == 0
    assert len(calls) == 1  # only the benchmark that was cut off
    for bench in ("math500", "aime24"):
        assert (out / f"{bench}.jsonl").read_text() == (tmp_path / "reference" / f"{bench}.jsonl").read_text()
    assert not (out / ".resume").exists()  # gone once every benchmark is written


def test_a_changed_setting_is_not_restored(tiny_policy, tmp_path, monkeypatch):
    data = _data(tmp_path / "data")
    out = tmp_path / "run"
    assert _generate(tiny_policy, data, out) == 0
    keep = tmp_path / "kept"
    shutil.copytree(out, keep)
    # an earlier attempt's copies under other settings: a run with max_tokens changed must regenerate both
    from grlo.generation_resume import DIR, Resume

    r = Resume(out)
    for bench in ("math500", "aime24"):
        r.save(bench, "an-old-fingerprint")
    over = tmp_path / "over.yaml"
    over.write_text("evaluation: {overrides: {math500: {k: 1, max_tokens: 8, limit: 10}}}\n")
    calls = []
    real = generation.TransformersBackend.generate
    monkeypatch.setattr(generation.TransformersBackend, "generate", lambda self, reqs, s: calls.append(len(reqs))
                        or real(self, reqs, s))
    assert _generate(tiny_policy, data, out, extra=[str(over)]) == 0
    assert len(calls) == 2 and not (out / DIR).exists()
