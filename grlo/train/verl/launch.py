"""Starting verl: one node runs `main_ppo` directly (it starts its own local Ray); `grlo.nnodes > 1` runs it on a Ray
cluster inside ONE SLURM allocation: the Ray head on the first node (where the job's command runs), one Ray worker per
other node started with `srun`, then `main_ppo` on the head with RAY_ADDRESS pointing at it (verl's `ray.init()`
joins that cluster), and the cluster stopped afterwards.

Inside Apptainer (`--use-singularity`) the workers run in the same image (APPTAINER_CONTAINER) with `--nv`; `srun`
must then be callable from inside the container (docs/gpu.md, "multi-node verl").
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from grlo.errors import GrloError
from grlo.train.verl import session


@dataclass
class RayPlan:
    head: list[str]
    workers: list[str]
    wait: list[str]
    env: dict[str, str]
    stop: list[str]


def plan(nnodes: int, gpus_per_node: int, port: int, head_host: str, image: str | None,
         python: str = "python3", timeout_s: int = 600, head_ip: str | None = None) -> RayPlan:
    """head_host: the first node's SLURM name (srun --exclude); head_ip: its address for Ray (default head_host)."""
    if nnodes < 2:
        raise GrloError(f"a Ray cluster plan needs nnodes >= 2, got {nnodes}", field="grlo.nnodes")
    ip = head_ip or head_host
    address = f"{ip}:{port}"
    wrap = ["apptainer", "exec", "--nv", image] if image else []
    head = ["ray", "start", "--head", f"--node-ip-address={ip}", f"--port={port}",
            f"--num-gpus={gpus_per_node}", "--disable-usage-stats"]
    # --overlap: a step inside the job's allocation beside the head's; --gpus-per-node: the step gets the GPUs
    # (SLURM gives a step none unless it asks, even inside an allocation that holds them)
    workers = ["srun", "--overlap", f"--nodes={nnodes - 1}", f"--ntasks={nnodes - 1}", "--ntasks-per-node=1",
               f"--gpus-per-node={gpus_per_node}", f"--exclude={head_host}", *wrap, "ray", "start", f"--address={address}",
               f"--num-gpus={gpus_per_node}", "--block", "--disable-usage-stats"]
    wait = [python, "-m", "grlo.train.verl.launch", "wait", address, str(nnodes * gpus_per_node), str(timeout_s)]
    return RayPlan(head, workers, wait, {"RAY_ADDRESS": address}, ["ray", "stop", "--force"])


def render_plan(p: RayPlan, verl_cmd: list[str]) -> str:
    q = lambda a: " ".join(shlex.quote(x) for x in a)  # noqa: E731
    return "\n".join([
        "# Ray cluster in one SLURM allocation (grlo.nnodes > 1)",
        f"# head (this node): {q(p.head)}",
        f"# workers (other nodes, background): {q(p.workers)} &",
        f"# wait for every GPU to join: {q(p.wait)}",
        f"# then, with {' '.join(f'{k}={v}' for k, v in p.env.items())}: the main_ppo command below",
        f"# finally: {q(p.stop)}",
    ])


def head_host() -> str:
    """The first node of the SLURM allocation (where the job's command runs)."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if nodelist:
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                                 check=True).stdout.split()
            if out:
                return out[0]
        except (OSError, subprocess.CalledProcessError):
            pass
    return socket.gethostname()


def verl_python() -> str:
    """The interpreter that has verl: this one (the verl image), $GRLO_VERL_PYTHON, else the checkout's .venv-verl
    (made by `make verl-venv`; smoke mode and the tests), else python3."""
    if importlib.util.find_spec("verl") is not None:
        return sys.executable
    if os.environ.get("GRLO_VERL_PYTHON"):
        return os.environ["GRLO_VERL_PYTHON"]
    venv = Path(__file__).resolve().parents[3] / ".venv-verl" / "bin" / "python"
    return str(venv) if venv.exists() else "python3"


def run_verl(cmd: list[str], env: dict[str, str], nnodes: int, gpus_per_node: int, port: int,
             image: str | None, cpu: bool = False, cwd: str | None = None) -> int:
    """Run main_ppo (through a Ray cluster when nnodes > 1); return its exit status. cpu: a CPU run
    (grlo.train.verl.cpu), one node, no GPU check. cwd: where Hydra writes its outputs/ (every path is absolute).
    main_ppo and the Ray it starts run as one session (grlo.train.verl.session): a signal to this process, or its
    death, stops all of them."""
    if cwd:
        os.makedirs(cwd, exist_ok=True)
    if cpu:
        return session.call(cmd, {**os.environ, **env}, cwd=cwd)
    require_gpus(gpus_per_node)
    if nnodes <= 1:
        return session.call(cmd, {**os.environ, **env}, cwd=cwd)
    if not os.environ.get("SLURM_JOB_ID"):
        raise GrloError(f"grlo.nnodes = {nnodes} needs a SLURM allocation with {nnodes} nodes (run with "
                        "--profile workflow/profiles/slurm); or set grlo.nnodes: 1", field="grlo.nnodes")
    host = head_host()
    p = plan(nnodes, gpus_per_node, port, host, image, head_ip=socket.gethostbyname(host))
    subprocess.run(p.head, check=True)
    workers = subprocess.Popen(p.workers)
    try:
        subprocess.run(p.wait, check=True)
        return session.call(cmd, {**os.environ, **env, **p.env}, cwd=cwd)
    finally:
        subprocess.call(p.stop)
        workers.terminate()


def require_gpus(gpus_per_node: int) -> None:
    """verl's workers need the configured GPUs on this node: fail with one line before Ray starts, not deep inside it."""
    import torch  # heavy: torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < gpus_per_node:
        raise GrloError(f"the verl engine needs {gpus_per_node} GPUs per node, {have} visible: run on a GPU node, set "
                        "grlo.n_gpus_per_node to what the job has, or set grlo.engine: native (CPU)",
                        field="grlo.n_gpus_per_node")


def wait_for_gpus(address: str, n_gpus: int, timeout_s: float) -> None:
    import ray  # heavy: ray

    ray.init(address=address)
    deadline = time.time() + timeout_s
    try:
        while ray.cluster_resources().get("GPU", 0) < n_gpus:
            if time.time() > deadline:
                raise SystemExit(f"Ray cluster at {address}: {ray.cluster_resources().get('GPU', 0)} of {n_gpus} "
                                 f"GPUs joined within {timeout_s:.0f} s")
            time.sleep(5)
    finally:
        ray.shutdown()


if __name__ == "__main__":  # python -m grlo.train.verl.launch wait ADDRESS N_GPUS TIMEOUT_S
    import sys

    if len(sys.argv) != 5 or sys.argv[1] != "wait":
        raise SystemExit("usage: python -m grlo.train.verl.launch wait ADDRESS N_GPUS TIMEOUT_S")
    wait_for_gpus(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
