"""AlpacaEval 2: length-controlled win rate against the reference outputs, computed by `alpaca-eval`.

Judges (config `evaluation.judge`):
- kind "openai" (paper mode): alpaca-eval's own PairwiseAnnotator with the AlpacaEval 2 annotator
  (weighted_alpaca_eval_gpt4_turbo: logprob of the judge's "m"/"M" token) whose judge model is `judge.model`
  (default gpt-4-1106-preview, the official AlpacaEval 2 judge) behind any OpenAI-compatible endpoint:
  `judge.base_url` (e.g. a local vLLM server, exported as OPENAI_API_BASE) and the key in OPENAI_API_KEY.
- kind "reward_model" (smoke mode, documented substitute): a local sequence classifier (default: the smoke reward
  model, `{outdir}/models/<judge.model>`) scores (instruction, output) with its own chat template; the preference
  for the model over the reference is the Bradley-Terry probability sigmoid(r_model - r_ref), mapped to alpaca-eval's
  scale 1 (reference wins) .. 2 (model wins).
Both feed alpaca-eval's get_length_controlled_winrate (its GLM on length difference + instruction difficulty). That
function downloads `df_gamed.csv` (instruction difficulties) from the hub; in smoke mode it is replaced by a local
table with difficulty 0 for every instruction and the GLM is fitted without the baseline regularisation
(alpaca-eval's "length_controlled_noreg"), with at most as many CV folds as instructions.
Only the first completion of each problem is judged (AlpacaEval is a single-output benchmark).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from grlo.errors import GrloError
from grlo.eval.scorers import ScoreResult
from grlo.models.local import check_model_dir

def _ensure_pkg_resources() -> None:
    """alpaca-eval 0.6.6 imports pkg_resources, which setuptools >= 81 no longer ships: provide the two functions it
    uses (parse_version, get_distribution(...).version) from `packaging` and importlib.metadata when it is missing."""
    import sys

    try:
        import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    import types
    from importlib import metadata

    from packaging.version import parse

    shim = types.ModuleType("pkg_resources")
    shim.parse_version = parse
    shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))
    sys.modules["pkg_resources"] = shim


DEFAULT_JUDGE = {"kind": "openai", "model": "gpt-4-1106-preview", "base_url": None,
                 "annotator": "weighted_alpaca_eval_gpt4_turbo"}


def judge_settings(cfg: dict) -> dict:
    return {**DEFAULT_JUDGE, **((cfg or {}).get("evaluation", {}).get("judge") or {})}


LOCAL_PLACEHOLDER_KEY = "EMPTY"  # vLLM's OpenAI server checks no key unless started with --api-key


def judge_api_key(judge: dict) -> str:
    """The key for the judge's OpenAI client: OPENAI_API_KEY (or the first of OPENAI_API_KEYS); for a local /
    self-hosted endpoint (judge.base_url or judge.serve) without one, an explicit placeholder, because the OpenAI
    client refuses to start without a key ("Missing credentials"). The real OpenAI judge without a key is a
    one-line error, raised before anything runs."""
    key = os.environ.get("OPENAI_API_KEY") or (os.environ.get("OPENAI_API_KEYS") or "").split(",")[0].strip()
    if key:
        return key
    base = judge.get("base_url") or ""
    if judge.get("serve") or (base and "api.openai.com" not in base):
        return LOCAL_PLACEHOLDER_KEY
    raise GrloError("AlpacaEval judge on the OpenAI API: set OPENAI_API_KEY, or point evaluation.judge.base_url at an "
                    "OpenAI-compatible server (or set evaluation.judge.serve to start one)", field="evaluation.judge")


def _judge_openai(judge: dict, refs: list[dict], outs: list[dict]) -> list[float]:
    import yaml

    key = judge_api_key(judge)
    _ensure_pkg_resources()
    import alpaca_eval
    from alpaca_eval.annotators import PairwiseAnnotator

    base = Path(alpaca_eval.__file__).parent / "evaluators_configs" / judge["annotator"] / "configs.yaml"
    conf = yaml.safe_load(base.read_text())
    name = judge["annotator"]
    conf[name]["completions_kwargs"]["model_name"] = judge["model"]
    # An explicit client (key + endpoint), not alpaca-eval's import-time defaults read from the environment; a
    # client_config_path that does not exist makes alpaca-eval build the client from exactly these.
    conf[name]["completions_kwargs"].update(openai_api_keys=[key], openai_api_base=judge.get("base_url") or None)
    # The prompt template path is relative to alpaca-eval's configs dir: make it absolute for our copy.
    conf[name]["prompt_template"] = str(base.parent.parent / conf[name]["prompt_template"])
    with tempfile.TemporaryDirectory(prefix="grlo-judge-") as tmp:
        path = Path(tmp) / name / "configs.yaml"
        path.parent.mkdir(parents=True)
        conf[name]["completions_kwargs"]["client_config_path"] = str(Path(tmp) / "no-client-configs.yaml")
        path.write_text(yaml.safe_dump(conf))
        annotator = PairwiseAnnotator(annotators_config=str(path), caching_path=None)
        ann = annotator.annotate_head2head(outputs_1=refs, outputs_2=outs, is_ordered=True)
    return [float(a["preference"]) if a.get("preference") is not None else math.nan for a in ann]


def _judge_reward_model(judge: dict, refs: list[dict], outs: list[dict], model_dir: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check_model_dir(model_dir, "judge model", tokenizer=True)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id

    @torch.no_grad()
    def reward(instruction: str, output: str) -> float:
        text = tok.apply_chat_template([{"role": "user", "content": instruction},
                                        {"role": "assistant", "content": output}], tokenize=False)
        ids = tok(text, return_tensors="pt", add_special_tokens=False, truncation=True, max_length=4096)
        return float(model(**ids).logits[0, 0])

    prefs = []
    for r, o in zip(refs, outs):
        d = reward(o["instruction"], o["output"]) - reward(r["instruction"], r["output"])
        prefs.append(1.0 + 1.0 / (1.0 + math.exp(-d)))
    return prefs


def lc_win_rate(df, offline: bool) -> dict:
    """alpaca-eval's LC win rate on an annotations frame (columns index, output_1, output_2, generator_1/2,
    preference, annotator); `offline` swaps the hub table of instruction difficulties for zeros."""
    import pandas as pd

    _ensure_pkg_resources()
    from alpaca_eval.metrics import glm_winrate

    n = int(df["preference"].notna().sum())
    info = dict(glm_winrate.GLM_INFO["length_controlled_noreg" if offline else "length_controlled_v1"])
    info["kwargs"] = {"n_splits": max(2, min(5, n))}
    if not offline:
        return glm_winrate.get_length_controlled_winrate(df, save_weights_dir=None, glm_info=info,
                                                         is_add_glm_preference_inplace=False)
    with tempfile.TemporaryDirectory(prefix="grlo-lc-") as tmp:
        table = Path(tmp) / "df_gamed.csv"
        pd.DataFrame({"model": "none", "index": range(int(df["index"].max()) + 1), "instruction_difficulty": 0.0,
                      "preference": 1.5, "std_delta_len": 0.0, "not_gamed_baseline": True}).to_csv(table, index=False)
        original = glm_winrate.hf_hub_download
        glm_winrate.hf_hub_download = lambda **kw: str(table)
        try:
            return glm_winrate.get_length_controlled_winrate(df, save_weights_dir=None, glm_info=info,
                                                             is_add_glm_preference_inplace=False,
                                                             is_warn_extreme_changes=False)
        finally:
            glm_winrate.hf_hub_download = original


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    import pandas as pd

    cfg = options.get("config") or {}
    judge = judge_settings(cfg)
    model_name = options.get("model") or "model"
    refs = [{"instruction": p["problem"], "output": p["reference"], "generator": p.get("generator") or "reference"}
            for p in problems]
    outs = [{"instruction": p["problem"], "output": c[0], "generator": model_name} for p, c in zip(problems, completions)]
    t0 = time.perf_counter()
    if options.get("judge_fn") is not None:  # injected by tests and by users with their own judge
        prefs = list(options["judge_fn"](refs, outs))
        judge_desc = {"kind": "custom"}
    elif judge["kind"] == "openai":
        from grlo.eval.judge_server import judge_endpoint

        judge_api_key(judge)  # a missing key for the OpenAI API fails here, before a server starts

        with judge_endpoint(judge, options.get("judge_log")) as base_url:
            prefs = _judge_openai({**judge, "base_url": base_url}, refs, outs)
        judge_desc = {k: judge.get(k) for k in ("kind", "model", "annotator")}
        judge_desc["base_url"] = base_url
        if judge.get("serve"):
            judge_desc["served_from"] = judge["serve"].get("model_path")
    elif judge["kind"] == "reward_model":
        outdir = cfg.get("outdir") or ""
        model_dir = judge.get("model_dir") or os.path.join(outdir, "models", judge["model"])
        prefs = _judge_reward_model(judge, refs, outs, model_dir)
        judge_desc = {"kind": "reward_model", "model": judge["model"], "model_dir": model_dir}
    else:
        raise GrloError(f"unknown judge kind {judge['kind']!r} (openai | reward_model)", field="evaluation.judge.kind")
    elapsed = time.perf_counter() - t0
    df = pd.DataFrame({"index": [int(p.get("index", i)) for i, p in enumerate(problems)],
                       "instruction": [r["instruction"] for r in refs],
                       "output_1": [r["output"] for r in refs], "output_2": [o["output"] for o in outs],
                       "generator_1": [r["generator"] for r in refs], "generator_2": model_name,
                       "preference": prefs, "annotator": judge_desc.get("kind")})
    offline = cfg.get("mode") == "smoke" or judge["kind"] != "openai"
    m = lc_win_rate(df, offline=offline)
    records = []
    for i, (p, c) in enumerate(zip(problems, completions)):
        pref = prefs[i]
        win = None if pref is None or (isinstance(pref, float) and math.isnan(pref)) else pref - 1.0
        records.append({"extracted": [None] * len(c), "scores": [win if win is not None else 0.0] + [0.0] * (len(c) - 1),
                        "verdicts": [f"preference {pref:.3f}" if win is not None else "unjudged"] + ["not judged"] * (len(c) - 1),
                        "reference_chars": len(p["reference"]), "output_chars": len(c[0]),
                        "time_s": elapsed / max(1, len(problems))})
    from importlib import metadata

    summary = {"value": float(m["length_controlled_winrate"]), "stderr": float(m.get("lc_standard_error") or 0.0),
               "win_rate": float(m["win_rate"]), "win_rate_stderr": float(m.get("standard_error") or 0.0),
               "judge": judge_desc, "lc_offline_substitute": offline, "k_judged": 1}
    return ScoreResult(records, summary=summary,
                       info={"implementation": f"alpaca-eval {metadata.version('alpaca-eval')}", "judge": judge_desc})
