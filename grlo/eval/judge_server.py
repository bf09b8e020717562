"""A local OpenAI-compatible judge server for AlpacaEval, started and stopped around one scoring job.

Config `evaluation.judge`: {kind: openai, serve: {model_path: DIR or hub id, port: null, command: null, ...}}.
When `serve` is set, `grlo score` starts `vllm serve MODEL --served-model-name <judge.model> --port P` (or the
given command, where `{port}` is replaced by P), waits until GET /v1/models answers, points alpaca-eval at
http://127.0.0.1:P/v1 and stops the server (whole process group) afterwards, also on errors. P is a free port the
OS gives (bind to port 0) unless `serve.port` fixes one, so two scoring jobs on one node never collide. The
scoring rule asks for the judge's GPUs (`judge_gpus`: tensor_parallel_size, for the AlpacaEval benchmark only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from grlo import registry
from grlo.errors import GrloError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port that is free now on 127.0.0.1 (the OS picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def judge_gpus(cfg: dict, bench: str) -> int:
    """GPUs a scoring job needs: the served judge's tensor-parallel size for the AlpacaEval benchmark, else 0."""
    judge = ((cfg or {}).get("evaluation") or {}).get("judge") or {}
    if registry.benchmark(bench).get("scorer") != "alpacaeval" or judge.get("kind", "openai") != "openai":
        return 0
    serve = judge.get("serve")
    return int(serve.get("tensor_parallel_size") or 1) if serve and not serve.get("command") else 0


def serve_command(judge: dict, port: int | None = None) -> list[str]:
    serve = judge["serve"]
    port = int(port if port is not None else serve.get("port") or 8011)
    if serve.get("command"):
        return [str(x).replace("{port}", str(port)) for x in serve["command"]]
    cmd = ["vllm", "serve", serve["model_path"], "--served-model-name", judge["model"],
           "--port", str(port), "--host", "127.0.0.1"]
    if judge.get("revision"):  # the pinned commit of a hub-id judge (registry/config, else the lock file)
        cmd += ["--revision", str(judge["revision"])]
    for key in ("tensor_parallel_size", "max_model_len", "gpu_memory_utilization"):
        if serve.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(serve[key])]
    return cmd


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ready(base_url: str, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
            ids = [m.get("id") for m in json.load(r).get("data", [])]
        return model in ids
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def judge_endpoint(judge: dict, log_path: str | None = None):
    """Yield the judge's base URL: the configured one, or a server started here for the duration."""
    if not judge.get("serve"):
        yield judge.get("base_url")
        return
    serve = judge["serve"]
    port = int(serve["port"]) if serve.get("port") else free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    if serve.get("port") and _port_in_use(port):
        raise GrloError(f"port {port} is already in use (another judge server or service): remove "
                        "evaluation.judge.serve.port to use a free port", field="evaluation.judge.serve.port")
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(serve_command(judge, port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + float(serve.get("startup_timeout_s", 900))
        while not _ready(base_url, judge["model"]):
            if proc.poll() is not None:
                raise GrloError(f"judge server exited with status {proc.returncode} before it was ready"
                                + (f" (log: {log_path})" if log_path else ""), field="evaluation.judge.serve")
            if time.monotonic() > deadline:
                raise GrloError("judge server not ready in time", field="evaluation.judge.serve.startup_timeout_s")
            time.sleep(1.0)
        log.info("judge server ready at %s (%s)", base_url, judge["model"])
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if out is not subprocess.DEVNULL:
            out.close()
