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


END = ("<|im_end|>",)  # the tiny policy's chat template ends a turn with it
REQS = [Request([{"role": "user", "content": "Explain the water cycle."}]),
        Request([{"role": "user", "content": "Write a plan."}]),
        Request([{"role": "user", "content": "Compare two methods for a small project with a long and detailed answer."}])]


def test_greedy_generation_is_identical_across_runs_and_batch_sizes(tiny_policy):
    s = Sampling(temperature=0.0, max_tokens=12, stop_tokens=END)
    a = TransformersBackend(tiny_policy, batch_size=3).generate(REQS, s, progress=False)
    b = TransformersBackend(tiny_policy, batch_size=3).generate(REQS, s, progress=False)
    assert [[c.text for c in cs] for cs in a] == [[c.text for c in cs] for cs in b]
    assert all(c.num_tokens <= 12 and c.finish_reason in ("stop", "eos", "length") for cs in a for c in cs)
    # left padding must not change greedy outputs: one prompt per batch gives the same texts
    c = TransformersBackend(tiny_policy, batch_size=1).generate(REQS, s, progress=False)
    assert [[x.text for x in cs] for cs in a] == [[x.text for x in cs] for cs in c]


def test_sampling_is_seeded_and_returns_n(tiny_policy):
    be = TransformersBackend(tiny_policy, batch_size=2)
    s = Sampling(temperature=1.0, top_p=0.9, top_k=50, max_tokens=10, n=3, seed=7, stop_tokens=END)
    a = be.generate(REQS, s, progress=False)
    b = be.generate(REQS, s, progress=False)
    assert all(len(cs) == 3 for cs in a)
    assert [[c.text for c in cs] for cs in a] == [[c.text for c in cs] for cs in b]
    other = be.generate(REQS, Sampling(temperature=1.0, max_tokens=10, n=3, seed=8, stop_tokens=END), progress=False)
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
                  "presence_penalty": 1.5, "stop": ["</answer>"], "stop_token_ids": None}
    assert vllm_sampling_kwargs(Sampling(top_k=0))["top_k"] == -1  # "off" is -1 in vLLM
    assert vllm_sampling_kwargs(Sampling())["stop"] is None
    assert vllm_sampling_kwargs(Sampling(), [151645])["stop_token_ids"] == [151645]


def _out(reason, token_ids, stop_reason=None):
    from types import SimpleNamespace

    return SimpleNamespace(finish_reason=reason, token_ids=token_ids, stop_reason=stop_reason, text="")


def test_vllm_finish_reasons_are_kept_as_reported():
    from grlo.generation import vllm_finish_reason

    stops = {7}
    assert vllm_finish_reason(_out("stop", [1, 2, 7], stop_reason=7), stops) == "stop"   # the turn end
    assert vllm_finish_reason(_out("stop", [1, 2, 9]), stops) == "eos"                  # EOS: stop_reason None
    assert vllm_finish_reason(_out("stop", [1, 7]), stops) == "stop"                    # eos that is also the turn end
    assert vllm_finish_reason(_out("stop", [1, 2], stop_reason="</a>"), stops) == "stop"  # a stop string
    assert vllm_finish_reason(_out("length", [1, 2]), stops) == "length"
    assert vllm_finish_reason(_out("abort", [1]), stops) == "abort"                     # not "stop"
    assert vllm_finish_reason(_out("error", []), stops) == "error"


def _llama3_tokenizer():
    """A Llama-3-style tokenizer: the chat template writes <|begin_of_text|> and the tokenizer's post-processor adds
    one too when asked for special tokens (as Meta's does)."""
    from tokenizers import processors

    from grlo.models.tiny import build_tokenizer

    tok = build_tokenizer(3, 320, "reward")
    bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    return tok, bos


def test_rendered_chat_prompt_has_one_bos():
    from grlo.generation import prompt_token_ids, render_chat

    tok, bos = _llama3_tokenizer()
    text = render_chat(tok, REQS[0].messages, {})
    assert text.startswith("<|begin_of_text|>")
    assert tok(text)["input_ids"][:2] == [bos, bos]  # the trap: add_special_tokens=True doubles it
    ids = prompt_token_ids(tok, REQS)
    assert all(x[0] == bos and x.count(bos) == 1 for x in ids)


def test_max_model_len_is_capped_by_the_models_own_config(tmp_path):
    from grlo.generation import effective_max_model_len, request_max_tokens

    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 32768}))  # Qwen3 base models
    assert effective_max_model_len(40960, str(tmp_path)) == 32768
    assert effective_max_model_len(None, str(tmp_path)) == 32768
    assert effective_max_model_len(4096, str(tmp_path)) == 4096
    nested = tmp_path / "mm"
    nested.mkdir()
    (nested / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 8192}}))
    assert effective_max_model_len(40960, str(nested)) == 8192
    assert effective_max_model_len(40960, str(tmp_path / "absent")) == 40960
    assert request_max_tokens([100, 32000], 8192, 32768) == [8192, 768]
    with pytest.raises(GrloError, match="context length"):
        request_max_tokens([32768], 10, 32768)


def test_paper_settings_stop_at_the_turn_end_and_fit_the_context():
    from grlo import config as C
    from grlo.generation import eval_settings

    cfg = C.load([ROOT / "config/config.yaml"])
    s, _, _ = eval_settings(cfg, "qwen3-4b-base--base", "math500")
    assert s.stop_tokens == ("<|im_end|>",) and not s.greedy
    for model in ("qwen3-4b-base--base", "qwen3-4b-base--grlo", "qwen3-4b-base--rlvr", "qwen3-4b-base--grlo-rlvr"):
        for bench in cfg["evaluation"]["benchmarks"]:
            s, _, _ = eval_settings(cfg, model, bench)
            assert s.max_tokens >= 8192 and not s.greedy, (model, bench)  # RLVR trained to 8,192
            assert s.max_tokens < 32768  # fits the Qwen3 base models' 32,768 context with the prompt
    s, chat, _ = eval_settings(cfg, "qwen3-4b--nonthinking", "aime24")
    assert (s.temperature, s.top_p, s.top_k, s.presence_penalty, s.max_tokens) == (0.7, 0.8, 20, 1.5, 38912)
    assert chat == {"enable_thinking": False}
    assert eval_settings(cfg, "qwen3-4b--thinking", "math500")[0].max_tokens == 32768


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


def test_vllm_backend_passes_token_ids_stop_ids_and_capped_budgets(monkeypatch):
    """The vLLM glue on CPU: a stand-in `vllm` module records what VLLMBackend.generate hands to LLM.generate."""
    import types

    from grlo.generation import VLLMBackend
    from grlo.models.tiny import build_tokenizer

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=SamplingParams))
    tok = build_tokenizer(1, 384, "policy")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    seen = {}

    class LLM:
        def generate(self, prompts, params, use_tqdm):
            seen.update(prompts=prompts, params=params)
            out = lambda reason, ids, sr=None: types.SimpleNamespace(text="x", token_ids=ids, finish_reason=reason, stop_reason=sr)  # noqa: E731
            return [types.SimpleNamespace(outputs=[out("stop", [5, end], end), out("abort", [5])]),
                    types.SimpleNamespace(outputs=[out("length", [5, 6]), out("stop", [5, tok.pad_token_id])])]

    be = object.__new__(VLLMBackend)
    be.llm, be.tokenizer = LLM(), tok
    reqs = REQS[:2]
    lens = [len(tok(tok.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"]) for r in reqs]
    be.max_model_len = lens[0] + 100
    outs = be.generate(reqs, Sampling(temperature=0.7, max_tokens=150, n=2, stop_tokens=END), progress=False)
    assert [p["prompt_token_ids"] for p in seen["prompts"]] == [tok(tok.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"] for r in reqs]
    assert [p.kw["max_tokens"] for p in seen["params"]] == [100, min(150, lens[0] + 100 - lens[1])]
    assert all(p.kw["stop_token_ids"] == [end] and p.kw["n"] == 2 for p in seen["params"])
    assert [[c.finish_reason for c in cs] for cs in outs] == [["stop", "abort"], ["length", "eos"]]
