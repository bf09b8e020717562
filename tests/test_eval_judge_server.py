"""The judge server lifecycle, with a stand-in OpenAI-compatible server (vllm is not installed on CPU machines)."""

import socket
import sys
import urllib.request
from pathlib import Path

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


def test_server_started_on_a_free_port_ready_and_stopped(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    judge = {"model": "judge-x", "serve": {"command": [sys.executable, str(script), "{port}", "judge-x"],
                                           "startup_timeout_s": 30}}
    busy = socket.socket()
    try:  # the old fixed default port is taken (by us, or already by something else): a free one is used
        busy.bind(("127.0.0.1", 8011))
        busy.listen()
    except OSError:
        pass
    try:
        with judge_endpoint(judge, str(tmp_path / "judge.log")) as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            assert port != 8011 and url == f"http://127.0.0.1:{port}/v1"
            assert b"judge-x" in urllib.request.urlopen(url + "/models", timeout=5).read()
            # a second scoring job on the same node gets another port
            with judge_endpoint(judge) as url2:
                assert url2 != url
    finally:
        busy.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_a_fixed_port_in_use_is_a_one_line_error():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        judge = {"model": "j", "serve": {"model_path": "/m", "port": busy.getsockname()[1]}}
        with pytest.raises(GrloError, match="already in use.*remove evaluation.judge.serve.port"):
            with judge_endpoint(judge):
                pass
    finally:
        busy.close()


def test_the_scoring_rule_asks_for_the_judges_gpus():
    from grlo.eval.judge_server import judge_gpus

    served = {"evaluation": {"judge": {"kind": "openai", "serve": {"model_path": "/m", "tensor_parallel_size": 2}}}}
    assert judge_gpus(served, "alpacaeval2") == 2
    assert judge_gpus(served, "math500") == 0
    assert judge_gpus({"evaluation": {"judge": {"kind": "openai", "base_url": "http://h/v1"}}}, "alpacaeval2") == 0
    assert judge_gpus({"evaluation": {"judge": {"kind": "reward_model"}}}, "alpacaeval2") == 0
    text = (Path(__file__).resolve().parent.parent / "workflow/rules/eval.smk").read_text()
    score_rule = text.split("rule score:")[1]
    assert "judge_gpus(config, w.bench)" in score_rule


def test_server_that_dies_is_an_error(tmp_path):
    judge = {"model": "j", "serve": {"command": [sys.executable, "-c", "raise SystemExit(3)"], "port": _free_port()}}
    with pytest.raises(GrloError, match="exited with status 3"):
        with judge_endpoint(judge):
            pass


def test_no_serve_passes_the_configured_url_and_vllm_command():
    with judge_endpoint({"model": "m", "base_url": "http://h:1/v1"}) as url:
        assert url == "http://h:1/v1"
    cmd = serve_command({"model": "judge", "serve": {"model_path": "/m", "tensor_parallel_size": 2}}, 9000)
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
    # No key: a local endpoint must work without OPENAI_API_KEY (the OpenAI client would say "Missing credentials")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEYS", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
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


def test_the_openai_judge_without_a_key_is_a_not_run_cell(monkeypatch):
    from grlo.eval.scorers import alpacaeval

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEYS", raising=False)
    res = alpacaeval.score({}, [{"problem": "q", "reference": "r"}], [["a"]],
                           {"config": {"evaluation": {"judge": {"kind": "openai", "model": "m", "serve": None}}}})
    assert res.summary["value"] is None and "OPENAI_API_KEY" in res.summary["not_run_reason"]
    assert alpacaeval.judge_api_key({"base_url": "http://127.0.0.1:1/v1"}) == alpacaeval.LOCAL_PLACEHOLDER_KEY
    assert alpacaeval.judge_api_key({"serve": {"model_path": "/m"}}) == alpacaeval.LOCAL_PLACEHOLDER_KEY
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert alpacaeval.judge_api_key({}) == "sk-real"
