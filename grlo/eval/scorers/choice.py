"""Multiple choice (GPQA-Diamond): documented letter extraction, exact match with the gold letter.

Extraction, first rule that matches wins:
1. OpenAI simple-evals' rule, as it is: the FIRST match of ANSWER_PATTERN_MULTICHOICE
   `(?i)Answer[ \\t]*:[ \\t]*\\$?([A-D])\\$?` (simple-evals common.py, applied with re.search in gpqa_eval.py; read at
   github.com/openai/simple-evals commits 01ac108d / 0ac027d5). It reads `Answer: C` and `Answer: $C$` (the
   answer shape the prompt itself shows). Like simple-evals, the letter is taken as written (a lower-case letter
   does not equal the upper-case gold) and the letter range is the problem's options (A-D for GPQA).
2. Our extension where simple-evals finds nothing (our assumption, it never overrides rule 1): the LAST
   "Answer: X" / "answer is X" with markdown or brackets around it (`**Answer:** (C)`, "the answer is (c)"); a bare
   letter must be upper case and stand alone, so an article or a word ("the answer is a mixture") is no letter.
3. the last \\boxed{X} whose content is a single valid letter (models trained on math often box the letter).
4. otherwise no answer (counted wrong). A bare letter elsewhere in the text is NOT used: it would reward guessing.

Option order (declared deviation, results/protocol.md): one seeded permutation per question (grlo.data.benchmarks,
`shuffle_seed` + row index) shared by its k samples, where simple-evals' gpqa_eval.py draws a fresh permutation for
every repeat (`rng.sample(range(4), 4)` per repeated example): one prompt per question lets the k samples share a
request (vLLM's n).
"""

from __future__ import annotations

import re
import time

from grlo.eval.scorers import ScoreResult
from grlo.registry.templates import LETTERS
from grlo.rewards.math import extract_boxed

EXTRACTION = ("simple-evals ANSWER_PATTERN_MULTICHOICE (first match), else the last markdown/bracketed "
              "'Answer: X' / 'answer is X', else a boxed single letter")
# "answer" in any case; the letter upper-case when bare ("the answer is a mixture" is not letter A), either case
# inside brackets / dollars ("the answer is (c)").
_LOOSE = re.compile(r"(?i:answer)(?:\s+(?i:is))?[\*_\s]*[:：]?[\*_\s]*"
                    r"(?:[\(\[\$]\s*([A-Ja-j])\s*[\)\]\$]|([A-J])(?![A-Za-z0-9]))")


def _simple_evals_pattern(valid: str) -> re.Pattern:
    return re.compile(rf"(?i)Answer[ \t]*:[ \t]*\$?([{valid[0]}-{valid[-1]}])\$?")


def extract_letter(text: str, n_choices: int = 4) -> str | None:
    valid = LETTERS[:n_choices]
    text = text or ""
    m = _simple_evals_pattern(valid).search(text)
    if m:
        return m.group(1)
    hits = [(m.group(1) or m.group(2)).upper() for m in _LOOSE.finditer(text)]
    hits = [h for h in hits if h in valid]
    if hits:
        return hits[-1]
    boxed = extract_boxed(text)
    if boxed:
        b = re.sub(r"^\\text\{(.*)\}$", r"\1", boxed.strip()).strip("() ").upper()
        if len(b) == 1 and b in valid:
            return b
    return None


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    records = []
    for p, comps in zip(problems, completions):
        t0 = time.perf_counter()
        ex = [extract_letter(c, len(p["choices"])) for c in comps]
        sc = [1.0 if e == p["answer"] else 0.0 for e in ex]
        vd = ["correct" if s else ("no_answer" if e is None else "wrong") for e, s in zip(ex, sc)]
        records.append({"extracted": ex, "scores": sc, "verdicts": vd, "time_s": time.perf_counter() - t0})
    return ScoreResult(records, info={"extraction": EXTRACTION})
