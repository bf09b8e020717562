"""Cross-rank statistics of the native PPO engine on 2 real processes (gloo): the advantage whitening of each rank's
half of the batch must equal a single-process masked_whiten of the whole batch, and the per-rank metric rows must
reduce to the whole batch's (grlo/train/distributed.py)."""

import json
import os
import socket
import subprocess
import sys

import torch

from grlo.train.advantages import masked_whiten

WORKER = r"""
import json, sys
import torch
import torch.distributed as dist
from grlo.train import distributed as D

rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
data = torch.load(sys.argv[5])
rows = data["x"].shape[0] // world
x, mask = data["x"][rank * rows:(rank + 1) * rows], data["mask"][rank * rows:(rank + 1) * rows]
w = D.global_whiten(x, mask)
row = {"step": 7, "reward/mean": 1.0 + rank, "response_length/max": 10.0 * (rank + 1),
       "response_length/min": 3.0 - rank, "time/step": 5.0 - rank, "perf/response_tokens": 100 + rank,
       "perf/total_tokens": 1000.0 * (rank + 1), "perf/tokens_per_s": 2.0, "gpu/memory": 1.0 + rank, "note": "x"}
red = D.reduce_row(row)
torch.save({"w": w, "row": red, "world": D.world_size(), "rank": D.rank(), "on": D.dist_on(),
            "sum": D.all_sum(torch.tensor([1.0 + rank])).item()}, out)
dist.destroy_process_group()
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(6, 9, generator=gen, dtype=torch.float64) * 3 + 1
    mask = torch.zeros(6, 9, dtype=torch.float64)
    # uneven response lengths: rank 0's half has many more tokens than rank 1's, and other statistics
    for b, n in enumerate([9, 8, 7, 2, 1, 3]):
        mask[b, :n] = 1.0
    x[3:] = x[3:] * 0.2 - 4.0
    return x, mask


def test_two_rank_whitening_equals_one_process_on_the_whole_batch(tmp_path):
    x, mask = _batch()
    torch.save({"x": x, "mask": mask}, tmp_path / "batch.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    port = _free_port()
    # the children import grlo from where this process does (the worktree, or a mutated copy)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(r), "2", str(port),
                               str(tmp_path / f"out{r}.pt"), str(tmp_path / "batch.pt")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode()[-3000:]
    res = [torch.load(tmp_path / f"out{r}.pt") for r in range(2)]

    ref = masked_whiten(x, mask)  # one process, the concatenated batch
    got = torch.cat([res[0]["w"], res[1]["w"]])
    assert torch.allclose(got, ref, atol=1e-10), (got - ref).abs().max()
    # the test can fail: each half whitened on its own is far from the reference
    local = torch.cat([masked_whiten(x[:3], mask[:3]), masked_whiten(x[3:], mask[3:])])
    assert not torch.allclose(local, ref, atol=1e-2)
    assert [(r["world"], r["rank"], r["on"], r["sum"]) for r in res] == [(2, 0, True, 3.0), (2, 1, True, 3.0)]

    # metric rows: means averaged, maxima/minima and phase times extreme, token counts summed, the rest untouched
    expect = {"step": 7, "reward/mean": 1.5, "response_length/max": 20.0, "response_length/min": 2.0,
              "time/step": 5.0, "perf/response_tokens": 201.0, "perf/total_tokens": 3000.0,
              "perf/tokens_per_s": 4.0, "gpu/memory": 2.0, "note": "x"}
    assert res[0]["row"] == expect and res[1]["row"] == expect


def test_single_process_helpers_are_identities():
    from grlo.train import distributed as D

    row = {"reward/mean": 1.0, "step": 3}
    assert not D.dist_on() and D.world_size() == 1 and D.rank() == 0
    assert D.reduce_row(row) is row
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(D.all_sum(t), t)
    x, mask = _batch()
    assert torch.allclose(D.global_whiten(x, mask), masked_whiten(x, mask), atol=1e-12)
    # a single response token: no Bessel correction (n - 1 = 0), the value whitens to 0 without dividing by zero
    one = torch.zeros(1, 3, dtype=torch.float64)
    one[0, 0] = 1.0
    w = D.global_whiten(torch.tensor([[5.0, 2.0, 3.0]], dtype=torch.float64), one)
    assert w.tolist() == [[0.0, 0.0, 0.0]]
    # constant values: variance 0, eps keeps it finite
    w = D.global_whiten(torch.full((2, 2), 4.0, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64))
    assert w.abs().max().item() == 0.0
    json.dumps(D.reduce_row({"a": 1}))
