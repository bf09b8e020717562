"""A local OpenAI-compatible judge server for AlpacaEval, started and stopped around one scoring job.

Config `evaluation.judge`: {kind: openai, serve: {model_path: DIR or hub id, port: 8011, command: null, ...}}.
When `serve` is set, `grlo score` starts `vllm serve MODEL --served-model-name <judge.model> --port P` (or the
given command), waits until GET /v1/models answers, points alpaca-eval at http://127.0.0.1:P/v1 and stops the
server (whole process group) afterwards, also on errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from grlo.errors import GrloError

log = logging.getLogger(__name__)


def serve_command(judge: dict) -> list[str]:
    serve = judge["serve"]
    if serve.get("command"):
        return list(serve["command"])
    cmd = ["vllm", "serve", serve["model_path"], "--served-model-name", judge["model"],
           "--port", str(serve.get("port", 8011)), "--host", "127.0.0.1"]
    for key in ("tensor_parallel_size", "max_model_len", "gpu_memory_utilization"):
        if serve.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(serve[key])]
    return cmd


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
    port = int(serve.get("port", 8011))
    base_url = f"http://127.0.0.1:{port}/v1"
    if _ready(base_url, judge["model"]):
        raise GrloError(f"port {port} already serves {judge['model']}: another judge server is running",
                        field="evaluation.judge.serve.port")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(serve_command(judge), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
