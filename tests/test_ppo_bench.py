"""benchmarks/ppo_update_bench.py runs on CPU with a tiny configuration and reports consistent figures."""

import json
import subprocess
import sys

from grlo.config import REPO_ROOT


def test_update_bench_tiny_cpu(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "ppo_update_bench.py"), "--sizes", "tiny",
           "--prompt-len", "16", "--response-len", "24", "--actor-micro", "2", "--critic-micro", "2",
           "--gen-batch", "2", "--gen-prompt", "8", "--gen-new", "6", "--peak-iters", "2", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    r = json.loads(out.read_text())
    assert r["device"].startswith("cpu") and not r["errors"]
    runs = {x["model"]: x for x in r["runs"]}
    assert set(runs) == {"actor", "critic"}
    for x in runs.values():
        assert x["loss_finite"] and x["seconds"] > 0
        assert x["real_tokens"] < x["padded_tokens"] == 2 * 2 * (16 + 24)  # 2 micro-batches of 2 sequences
        assert abs(x["tokens_per_s"] - x["real_tokens"] / x["seconds"]) < 1e-6 * x["tokens_per_s"]
        assert abs(x["mfu"] - x["model_tflops"] / r["peak_matmul_tflops"]) < 1e-9
    up = r["update_phase"]["tiny"]
    a, c = runs["actor"], runs["critic"]
    assert abs(1 / up["tokens_per_s"] - (a["seconds"] / a["real_tokens"] + c["seconds"] / c["real_tokens"])) < 1e-9
    assert r["generation"][0]["generated_tokens_per_s"] > 0
