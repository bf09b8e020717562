"""The judge server lifecycle, with a stand-in OpenAI-compatible server (vllm is not installed on CPU machines)."""

import socket
import sys
import urllib.request

import pytest

from grlo.errors import GrloError
from grlo.eval.judge_server import judge_endpoint, serve_command

FAKE = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": sys.argv[2]}]}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_started_ready_and_stopped(tmp_path):
    port = _free_port()
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    judge = {"model": "judge-x", "serve": {"command": [sys.executable, str(script), str(port), "judge-x"],
                                           "port": port, "startup_timeout_s": 30}}
    with judge_endpoint(judge, str(tmp_path / "judge.log")) as url:
        assert url == f"http://127.0.0.1:{port}/v1"
        assert b"judge-x" in urllib.request.urlopen(url + "/models", timeout=5).read()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_server_that_dies_is_an_error(tmp_path):
    judge = {"model": "j", "serve": {"command": [sys.executable, "-c", "raise SystemExit(3)"], "port": _free_port()}}
    with pytest.raises(GrloError, match="exited with status 3"):
        with judge_endpoint(judge):
            pass


def test_no_serve_passes_the_configured_url_and_vllm_command():
    with judge_endpoint({"model": "m", "base_url": "http://h:1/v1"}) as url:
        assert url == "http://h:1/v1"
    cmd = serve_command({"model": "judge", "serve": {"model_path": "/m", "port": 9000, "tensor_parallel_size": 2}})
    assert cmd[:3] == ["vllm", "serve", "/m"] and "--served-model-name" in cmd and cmd[cmd.index("--port") + 1] == "9000"
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2"


CHAT = r'''
import json, math, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers["Content-Length"]); req = json.loads(self.rfile.read(n))
        open(sys.argv[2], "a").write(req["model"] + "\n")
        top = [{"token": "M", "logprob": math.log(0.7), "bytes": None}, {"token": "m", "logprob": math.log(0.3), "bytes": None}]
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": req["model"],
                "choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": "M"},
                             "logprobs": {"content": [{"token": "M", "logprob": math.log(0.7), "bytes": None,
                                                       "top_logprobs": top}]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def test_alpaca_eval_annotator_against_a_local_openai_compatible_judge(tmp_path, monkeypatch):
    """Our wiring of alpaca-eval's AlpacaEval 2 annotator (judge model name, endpoint, logprob parser)."""
    from grlo.eval.scorers import alpacaeval

    port = _free_port()
    script, seen = tmp_path / "chat.py", tmp_path / "models.txt"
    script.write_text(CHAT)
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    monkeypatch.chdir(tmp_path)
    import subprocess, time

    proc = subprocess.Popen([sys.executable, str(script), str(port), str(seen)])
    try:
        time.sleep(1.0)
        judge = {**alpacaeval.DEFAULT_JUDGE, "model": "my-local-judge", "base_url": f"http://127.0.0.1:{port}/v1"}
        refs = [{"instruction": f"q{i}", "output": "ref", "generator": "reference"} for i in range(3)]
        outs = [{"instruction": f"q{i}", "output": "model answer", "generator": "m"} for i in range(3)]
        prefs = alpacaeval._judge_openai(judge, refs, outs)
    finally:
        proc.kill()
        proc.wait()
    assert set(seen.read_text().split()) == {"my-local-judge"}
    # P(m) = 0.3 means the judge prefers the second output; alpaca-eval may swap the order to debias.
    assert all(p == pytest.approx(1.7) or p == pytest.approx(1.3) for p in prefs) and len(prefs) == 3
