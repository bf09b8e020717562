"""AlpacaEval 2: length-controlled win rate against the reference outputs, computed by `alpaca-eval`.

Judges (config `evaluation.judge`):
- kind "openai": alpaca-eval's own PairwiseAnnotator with a weighted annotator (the logprob of the judge's "m"/"M"
  token, so the judge must return logprobs) whose judge model is `judge.model`, behind any OpenAI-compatible
  endpoint: `judge.serve` (a vLLM server started for the scoring job, its log under logs/), `judge.base_url`, or
  OpenAI's API (key in OPENAI_API_KEY). The default is a local open-weights judge (DEFAULT_JUDGE): the official
  AlpacaEval 2 judge, gpt-4-1106-preview (annotator weighted_alpaca_eval_gpt4_turbo), was shut down by OpenAI on
  2026-10-23, so the paper's AE2-LC cannot be re-judged with it (RETIRED). Annotations are cached per model in the
  outdir (`annotations_path`): a rerun, or a run after a crash, asks the judge only for what is not cached, and
  starts no judge server when nothing is missing.
- kind "reward_model" (smoke mode, documented substitute): a local sequence classifier (default: the smoke reward
  model, `{outdir}/models/<judge.model>`) scores (instruction, output) with its own chat template; the preference
  for the model over the reference is the Bradley-Terry probability sigmoid(r_model - r_ref), mapped to alpaca-eval's
  scale 1 (reference wins) .. 2 (model wins).
- kind "none", or an OpenAI-API judge that cannot be called (retired model, no key): the cell is "not run (no
  judge)" with the reason, never a traceback.
Every summary records the judge's id, revision, annotator and whether it is the paper's judge (`judge`); a
substitute judge's LC is a different measurement from the paper's and is never compared with it.
All feed alpaca-eval's get_length_controlled_winrate (its GLM on length difference + instruction difficulty). That
function downloads `df_gamed.csv` (instruction difficulties) from the hub at `main`; here the file comes from the
benchmark's pinned source (registry `support_files`, fetched and verified by `grlo download-benchmark`, beside the
prepared benchmark file), so scoring never touches the network except for the judge. In smoke mode it is replaced
by a table with difficulty 0 for every instruction and the GLM is fitted without the baseline regularisation
(alpaca-eval's "length_controlled_noreg"), with at most as many CV folds as instructions.
Standard error of the LC win rate: alpaca-eval's own `lc_standard_error` (the standard error of the mean of the GLM's
per-instruction predictions at zero length difference, x 100) wherever the instruction difficulties are known. In
smoke mode that definition is 0 by construction (every instruction has difficulty 0, so every prediction is the same),
so the smoke substitute reports the delta-method standard error of the same LC win rate under a robust (sandwich, HC1)
covariance of the fitted GLM (`lc_sandwich_stderr`; deviation `alpacaeval-smoke-lc` in grlo/eval/deviations.py).
Only the first completion of each problem is judged (AlpacaEval is a single-output benchmark).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
import types
from importlib import metadata
from pathlib import Path

import yaml

from grlo import config as C
from grlo import lock, registry
from grlo.data.benchmarks import support_path
from grlo.errors import GrloError
from grlo.eval.judge_server import judge_endpoint
from grlo.eval.scorers import ScoreResult
from grlo.models.local import check_model_dir

def _ensure_pkg_resources() -> None:
    """alpaca-eval 0.6.6 imports pkg_resources, which setuptools >= 81 no longer ships: provide the two functions it
    uses (parse_version, get_distribution(...).version) from `packaging` and importlib.metadata when it is missing."""
    try:
        import pkg_resources  # optional: pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    from packaging.version import parse  # optional: packaging

    shim = types.ModuleType("pkg_resources")
    shim.parse_version = parse
    shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))
    sys.modules["pkg_resources"] = shim


# The paper's judge: AlpacaEval 2's annotator and judge model (alpaca-eval 0.6.6 evaluators_configs).
PAPER_JUDGE = {"model": "gpt-4-1106-preview", "annotator": "weighted_alpaca_eval_gpt4_turbo"}
# OpenAI models shut down (OpenAI's deprecations page): an OpenAI-API judge with one of these cannot run.
RETIRED = {"gpt-4-1106-preview": "2026-10-23", "gpt-4o": "2027-01-14", "gpt-4.1": "2027-01-14"}
# Default judge: Llama-3-70B-Instruct through alpaca-eval's own weighted logprob annotator for it
# (weighted_alpaca_eval_vllm_llama3_70b, shipped with alpaca-eval 0.6.6), served locally by vLLM. Chosen for its
# published agreement: alpaca-eval 0.6.6's evaluators leaderboard
# (alpaca_eval/leaderboards/evaluators/evaluators_leaderboard.csv) gives Llama-3-70B-Instruct as judge
# (alpaca_eval_llama3_70b_fn) 67.5% agreement with human preferences, the official judge
# (weighted_alpaca_eval_gpt4_turbo) 65.7%; the weighted (logprob) variant has no published figure of its own.
DEFAULT_JUDGE = {"kind": "openai", "model": "meta-llama/Meta-Llama-3-70B-Instruct", "revision": None,
                 "base_url": None, "annotator": "weighted_alpaca_eval_vllm_llama3_70b",
                 "serve": {"model_path": "meta-llama/Meta-Llama-3-70B-Instruct", "tensor_parallel_size": 2,
                           "max_model_len": 8192}}
AGREEMENT = {
    "meta-llama/Meta-Llama-3-70B-Instruct": "67.5% human agreement for Llama-3-70B-Instruct as AlpacaEval judge "
    "(alpaca_eval_llama3_70b_fn; the official judge: 65.7%), alpaca-eval 0.6.6 "
    "leaderboards/evaluators/evaluators_leaderboard.csv",
    "gpt-4-1106-preview": "65.7% human agreement (weighted_alpaca_eval_gpt4_turbo), alpaca-eval 0.6.6 "
    "leaderboards/evaluators/evaluators_leaderboard.csv",
}


def judge_settings(cfg: dict) -> dict:
    conf = (cfg or {}).get("evaluation", {}).get("judge") or {}
    if conf.get("kind") not in (None, "openai"):  # a reward-model / none judge takes nothing from the default
        return {"kind": conf["kind"], "model": None, "revision": None, "annotator": None, **conf}
    return {**DEFAULT_JUDGE, **conf}


def judge_source(cfg: dict) -> tuple[str, str, dict] | None:
    """The AlpacaEval judge as a hub source when the run judges with a model served from a hub id (not a local dir)."""
    if not any(registry.benchmark(b).get("scorer") == "alpacaeval" for b in C.get(cfg, "evaluation.benchmarks") or []):
        return None
    judge = judge_settings(cfg)
    path = str((judge.get("serve") or {}).get("model_path") or "")
    if judge.get("kind") != "openai" or not path or os.path.isabs(path) or path.startswith(".") or Path(path).exists():
        return None
    return ("judges", "alpacaeval-judge", {"kind": "hub", "repo": path, "revision": judge.get("revision")})


def is_paper_judge(judge: dict) -> bool:
    return (judge.get("kind") == "openai" and judge.get("model") == PAPER_JUDGE["model"]
            and judge.get("annotator") == PAPER_JUDGE["annotator"])


def judge_record(judge: dict) -> dict:
    """What every AlpacaEval cell records about its judge."""
    served = (judge.get("serve") or {}).get("model_path")
    return {"kind": judge.get("kind"), "model": judge.get("model"), "revision": judge.get("revision"),
            "annotator": judge.get("annotator"), "served_from": served, "paper_judge": is_paper_judge(judge),
            "agreement": AGREEMENT.get(judge.get("model") or "")}


def no_judge_reason(judge: dict) -> str | None:
    """Why no judge can be called (None when one can)."""
    if judge.get("kind") == "none":
        return "evaluation.judge.kind is none"
    if judge.get("kind") != "openai" or judge.get("serve") or judge.get("base_url"):
        return None
    model = judge.get("model") or ""
    if model in RETIRED:
        return f"{model} on OpenAI's API was shut down on {RETIRED[model]}"
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEYS")):
        return "an OpenAI-API judge needs OPENAI_API_KEY (or set evaluation.judge.serve / base_url)"
    return None


def annotations_path(output: str | None, judge: dict) -> str | None:
    """The judge's annotation cache for one model's cell, beside its score file: one file per judge (model, revision,
    annotator), so another judge never reuses these annotations."""
    if not output:
        return None
    key = json.dumps({k: judge.get(k) for k in ("model", "revision", "annotator")}, sort_keys=True)
    out = Path(output)
    stem = out.name.removesuffix(".json")
    return str(out.with_name(f"{stem}.judge-{hashlib.sha256(key.encode()).hexdigest()[:10]}.annotations.json"))


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


def _judge_openai(judge: dict, refs: list[dict], outs: list[dict], caching_path: str | None = None) -> list[float]:
    key = judge_api_key(judge)
    _ensure_pkg_resources()
    import alpaca_eval  # heavy: alpaca_eval
    from alpaca_eval.annotators import PairwiseAnnotator  # heavy: alpaca_eval

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
        if caching_path:
            Path(caching_path).parent.mkdir(parents=True, exist_ok=True)
        annotator = PairwiseAnnotator(annotators_config=str(path), caching_path=caching_path)
        ann = annotator.annotate_head2head(outputs_1=refs, outputs_2=outs, is_ordered=True)
    return [float(a["preference"]) if a.get("preference") is not None else math.nan for a in ann]


def _judge_reward_model(judge: dict, refs: list[dict], outs: list[dict], model_dir: str) -> list[float]:
    import torch  # heavy: torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # heavy: transformers

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


def cached_preferences(cache: str | None, annotator: str, refs: list[dict], outs: list[dict]) -> list[float] | None:
    """Every pair's preference from the annotation cache (alpaca-eval's own file: instruction, output_1, output_2,
    annotator, preference), or None when any pair is missing: then the judge is started for the missing ones only."""
    if not cache or not Path(cache).is_file():
        return None
    rows = json.loads(Path(cache).read_text(encoding="utf-8"))
    known = {(r["instruction"], r["output_1"], r["output_2"]): r["preference"] for r in rows
             if r.get("annotator") == annotator and r.get("preference") is not None}
    prefs = [known.get((o["instruction"], r["output"], o["output"])) for r, o in zip(refs, outs)]
    return None if any(p is None for p in prefs) else [float(p) for p in prefs]


def lc_win_rate(df, df_gamed: str | None) -> dict:
    """alpaca-eval's LC win rate on an annotations frame (columns index, output_1, output_2, generator_1/2,
    preference, annotator). `df_gamed` is the local copy of alpaca-eval's df_gamed.csv (length_controlled_v1, as
    alpaca-eval); None = smoke substitute (difficulty 0 everywhere, length_controlled_noreg). Never downloads."""
    import pandas as pd  # heavy: pandas

    _ensure_pkg_resources()
    from alpaca_eval.metrics import glm_winrate  # heavy: alpaca_eval

    n = int(df["preference"].notna().sum())
    info = dict(glm_winrate.GLM_INFO["length_controlled_noreg" if df_gamed is None else "length_controlled_v1"])
    info["kwargs"] = {"n_splits": max(2, min(5, n))}
    with tempfile.TemporaryDirectory(prefix="grlo-lc-") as tmp:
        table = df_gamed
        if table is None:
            table = str(Path(tmp) / "df_gamed.csv")
            pd.DataFrame({"model": "none", "index": range(int(df["index"].max()) + 1), "instruction_difficulty": 0.0,
                          "preference": 1.5, "std_delta_len": 0.0, "not_gamed_baseline": True}).to_csv(table, index=False)

        def local_only(**kw):  # alpaca-eval asks the hub for df_gamed.csv: it gets the pinned local copy
            if kw.get("filename") != "df_gamed.csv":
                raise GrloError(f"alpaca-eval asked the hub for {kw.get('filename')!r}: not registered",
                                field="alpacaeval2.source.paper.support_files")
            return str(table)

        original = glm_winrate.hf_hub_download
        glm_winrate.hf_hub_download = local_only
        weights_dir = Path(tmp) / "weights"  # alpaca-eval writes the fitted GLM's weights there (one row)
        try:
            m = glm_winrate.get_length_controlled_winrate(df, save_weights_dir=weights_dir, glm_info=info,
                                                          is_add_glm_preference_inplace=False,
                                                          is_warn_extreme_changes=df_gamed is not None)
        finally:
            glm_winrate.hf_hub_download = original
        if df_gamed is None:  # the official SE is 0 by construction here: the documented substitute
            saved = sorted(weights_dir.rglob("*.csv"))
            weights = pd.read_csv(saved[0], index_col=0).iloc[-1].to_dict() if saved else {}
            m["lc_standard_error"] = lc_sandwich_stderr(df, weights)
        return m


# alpaca-eval's design-matrix columns (patsy names of its GLM formula's terms)
LEN_COL, DIFF_COL, BASE_COL = "np.tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline.astype(float)"


def lc_sandwich_stderr(df, weights: dict, difficulty=None) -> float | None:
    """Standard error (x 100) of the LC win rate mean_i sigmoid(x0_i . w), x0_i = instruction i's features at zero
    length difference, for the GLM alpaca-eval fitted (`weights`, by column name): the delta method with the robust
    sandwich covariance (HC1) of a fractional-response logistic regression, H^-1 (sum_i (y_i - p_i)^2 x_i x_i^T)
    H^-1 * n / (n - k), H = sum_i p_i (1 - p_i) x_i x_i^T, over the terms the L1 fit kept (and always the baseline
    term, the LC level). Features as alpaca-eval builds them: tanh of the length difference (reference minus model,
    in characters) over its standard deviation, the instruction difficulty (0 in smoke mode), 1; y = preference - 1
    (a 0 preference counts as a tie). With the length term dropped this is the standard error of the mean
    preference (alpaca-eval's raw win-rate standard error). None with fewer than two judged instructions."""
    import numpy as np  # heavy: numpy

    delta = (df["output_1"].str.len() - df["output_2"].str.len()).astype(float)
    sd = float(delta.std())
    z = np.tanh((delta / sd).to_numpy()) if sd > 0 else np.zeros(len(df))
    diff = np.zeros(len(df)) if difficulty is None else np.asarray(difficulty, dtype=float)
    y = df["preference"].astype(float).replace({0.0: 1.5}).to_numpy() - 1.0
    keep = ~np.isnan(y)
    X = np.column_stack([z, diff, np.ones(len(df))])[keep]
    X0 = np.column_stack([np.zeros(len(df)), diff, np.ones(len(df))])[keep]
    y = y[keep]
    w = np.array([float(weights.get(c, 0.0)) for c in (LEN_COL, DIFF_COL, BASE_COL)])
    free = [j for j in range(3) if (w[j] != 0.0 or j == 2) and np.any(X[:, j] != 0)]
    n, k = len(y), len(free)
    if n < 2 or n <= k:
        return None
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    p0 = 1.0 / (1.0 + np.exp(-(X0 @ w)))
    Xf = X[:, free]
    bread = np.linalg.pinv((Xf * (p * (1 - p))[:, None]).T @ Xf)
    meat = (Xf * ((y - p) ** 2)[:, None]).T @ Xf
    cov = bread @ meat @ bread * n / (n - k)
    grad = ((p0 * (1 - p0))[:, None] * X0[:, free]).mean(axis=0)
    return float(np.sqrt(max(float(grad @ cov @ grad), 0.0)) * 100.0)


def _float_or_none(x) -> float | None:
    """A metric as a float; missing or NaN -> None (not run / unknown), never 0."""
    return None if x is None or x != x else float(x)


def support_file(options: dict, name: str) -> Path | None:
    """A support file fetched with the benchmark (registry `support_files`), beside the prepared data file."""
    data = options.get("data_path")
    return support_path(Path(data), name) if data else None


def _not_run(problems, completions, reason: str, judge: dict) -> ScoreResult:
    records = [{"extracted": [None] * len(c), "scores": [0.0] * len(c), "verdicts": ["not judged"] * len(c)}
               for c in completions]
    rec = judge_record(judge)
    return ScoreResult(records, summary={"value": None, "stderr": None, "status": "not run (no judge)",
                                         "not_run_reason": reason, "judge": rec},
                       info={"judge": rec, "not_run_reason": reason})


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    import pandas as pd  # heavy: pandas

    cfg = options.get("config") or {}
    judge = judge_settings(cfg)
    if judge.get("kind") == "openai" and not judge.get("revision"):
        src = judge_source(cfg)
        if src is not None and lock.lock_path(cfg) is not None:
            judge["revision"] = lock.revision(cfg, *src)  # refused with one line when frozen and unpinned
            if judge["revision"] is None:  # unpinned, not frozen: the hub's current commit, recorded
                from huggingface_hub import HfApi  # optional: huggingface_hub

                judge["revision"] = HfApi().model_info(src[2]["repo"]).sha
                lock.record(cfg, src[0], src[1], src[2], judge["revision"], {})
    model_name = options.get("model") or "model"
    refs = [{"instruction": p["problem"], "output": p["reference"], "generator": p.get("generator") or "reference"}
            for p in problems]
    outs = [{"instruction": p["problem"], "output": c[0], "generator": model_name} for p, c in zip(problems, completions)]
    reason = None if options.get("judge_fn") is not None else no_judge_reason(judge)
    if reason:
        return _not_run(problems, completions, reason, judge)
    paper_lc = cfg.get("mode") != "smoke" and judge["kind"] == "openai" and options.get("judge_fn") is None
    df_gamed = None
    if paper_lc:  # before any judge call: a missing file must not waste the judge's work
        df_gamed = support_file(options, "df_gamed.csv")
        if df_gamed is None or not df_gamed.is_file():
            raise GrloError("alpaca-eval's df_gamed.csv (instruction difficulties for the LC win rate) is not beside "
                            "the benchmark file: run `grlo download-benchmark` for alpacaeval2 (scoring never "
                            "downloads)", path=str(df_gamed) if df_gamed else None)
    t0 = time.perf_counter()
    if options.get("judge_fn") is not None:  # injected by tests and by users with their own judge
        prefs = list(options["judge_fn"](refs, outs))
        judge_desc = {"kind": "custom", "model": None, "revision": None, "paper_judge": False}
    elif judge["kind"] == "openai":
        judge_api_key(judge)  # a missing key for the OpenAI API fails here, before a server starts

        cache = annotations_path(options.get("output"), judge)
        prefs, base_url = cached_preferences(cache, judge["annotator"], refs, outs), None
        if prefs is None:  # something to judge: start (or reach) the judge
            with judge_endpoint(judge, options.get("judge_log")) as base_url:
                prefs = _judge_openai({**judge, "base_url": base_url}, refs, outs, caching_path=cache)
        judge_desc = {**judge_record(judge), "base_url": base_url, "annotations": cache}
    elif judge["kind"] == "reward_model":
        outdir = cfg.get("outdir") or ""
        model_dir = judge.get("model_dir") or os.path.join(outdir, "models", judge["model"])
        prefs = _judge_reward_model(judge, refs, outs, model_dir)
        judge_desc = {**judge_record(judge), "model_dir": model_dir}
    else:
        raise GrloError(f"unknown judge kind {judge['kind']!r} (openai | reward_model | none)",
                        field="evaluation.judge.kind")
    elapsed = time.perf_counter() - t0
    df = pd.DataFrame({"index": [int(p.get("index", i)) for i, p in enumerate(problems)],
                       "instruction": [r["instruction"] for r in refs],
                       "output_1": [r["output"] for r in refs], "output_2": [o["output"] for o in outs],
                       "generator_1": [r["generator"] for r in refs], "generator_2": model_name,
                       "preference": prefs, "annotator": judge_desc.get("kind")})
    offline = df_gamed is None
    m = lc_win_rate(df, str(df_gamed) if df_gamed is not None else None)
    records = []
    for i, (p, c) in enumerate(zip(problems, completions)):
        pref = prefs[i]
        win = None if pref is None or (isinstance(pref, float) and math.isnan(pref)) else pref - 1.0
        records.append({"extracted": [None] * len(c), "scores": [win if win is not None else 0.0] + [0.0] * (len(c) - 1),
                        "verdicts": [f"preference {pref:.3f}" if win is not None else "unjudged"] + ["not judged"] * (len(c) - 1),
                        "reference_chars": len(p["reference"]), "output_chars": len(c[0]),
                        "time_s": elapsed / max(1, len(problems))})
    summary = {"value": float(m["length_controlled_winrate"]), "stderr": _float_or_none(m.get("lc_standard_error")),
               "win_rate": float(m["win_rate"]), "win_rate_stderr": float(m.get("standard_error") or 0.0),
               "judge": judge_desc, "lc_offline_substitute": offline, "k_judged": 1}
    return ScoreResult(records, summary=summary,
                       info={"implementation": f"alpaca-eval {metadata.version('alpaca-eval')}", "judge": judge_desc})
