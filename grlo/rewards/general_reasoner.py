"""Verifiable rewards for the RLVR baseline (General-Reasoner's reward shape) and the GRLO -> RLVR stage.

Every equivalence decision goes through `grlo.rewards.math` (the one checker shared with evaluation), unless the
optional model-based verifier (TIGER-Lab/general-verifier) is selected.

General-Reasoner's reward (inferred baseline, results/README.md §3; its `verifier.py` at
github.com/TIGER-AI-Lab/General-Reasoner, read for reference):
  - no answer can be extracted              -> -0.5
  - answer verified                         -> 1 - 0.05 * min(10, |len(gold) - len(answer)|)   (lengths in tokens)
  - answer extracted but wrong              -> 0
Their lengths are token counts from the verifier's tokenizer; we count with the policy's tokenizer when one is
given (same Qwen vocabulary family for Qwen backbones), else characters. This is our documented assumption.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from grlo.models.local import check_model_dir
from grlo.rewards.math import extract_boxed, is_equivalent

log = logging.getLogger(__name__)

NO_ANSWER_REWARD = -0.5  # General-Reasoner verifier.py (inferred baseline)
LENGTH_PENALTY_PER_UNIT = 0.05  # idem
LENGTH_PENALTY_CAP = 10  # idem: the difference is capped at 10 tokens

# Fallback answer markers for completions without \boxed{}: the last "<marker>: <answer>" line wins.
_FINAL_ANSWER_RE = re.compile(
    r"(?:final answer(?: is)?|the answer is|answer|the solution is|solution)\s*:\s*(?P<ans>[^\n]*?)\s*(?:\n|$)",
    re.IGNORECASE,
)
_TRAILING_SPECIALS = ("</s>", "<|im_end|>", "<|endoftext|>")


def extract_answer(completion: str | None) -> str | None:
    """The last \\boxed{} answer (via grlo.rewards.math), else the last 'Final Answer: ...' line; None if neither."""
    if not completion:
        return None
    boxed = extract_boxed(completion)
    if boxed:
        return boxed
    last = None
    for m in _FINAL_ANSWER_RE.finditer(completion):
        last = m.group("ans").strip()
    if last:
        for tok in _TRAILING_SPECIALS:
            if last.endswith(tok):
                last = last[: -len(tok)].strip()
        last = last.strip().rstrip(".").strip("$ ").strip()
    return last or None


def length_penalty(gold: str, answer: str, length_fn: Callable[[str], int] = len) -> float:
    diff = abs(length_fn(gold) - length_fn(answer))
    return LENGTH_PENALTY_PER_UNIT * min(LENGTH_PENALTY_CAP, diff)


@dataclass(frozen=True)
class Verdict:
    reward: float
    extracted: str | None
    correct: bool
    penalty: float  # the length penalty subtracted (0 when not verified)


def shaped_reward(
    gold: str,
    completion: str,
    *,
    length_fn: Callable[[str], int] = len,
    correct: bool | None = None,
) -> Verdict:
    """General-Reasoner's reward for one completion. `correct` overrides the math check (model-based verifier)."""
    extracted = extract_answer(completion)
    if extracted is None:
        return Verdict(NO_ANSWER_REWARD, None, False, 0.0)
    ok = is_equivalent(gold, extracted) if correct is None else bool(correct)
    if not ok:
        return Verdict(0.0, extracted, False, 0.0)
    pen = length_penalty(gold, extracted, length_fn)
    return Verdict(1.0 - pen, extracted, True, pen)


def correctness_reward(gold: str, completion: str) -> float:
    """Plain 0/1 correctness of the final boxed answer (the evaluation's checker, exactly)."""
    extracted = extract_answer(completion)
    return 1.0 if is_equivalent(gold, extracted) else 0.0


# ---------------------------------------------------------------------------------------------------------------
# Optional model-based verifier (paper mode): TIGER-Lab/general-verifier, a 1.5B generative judge.
# Its input format is the plain-text prompt it was trained on (General-Reasoner's verifier.py); the verdict is a
# "Final Decision: Yes" in its greedy output.
VERIFIER_PASS_TAG = "Final Decision: Yes"


def verifier_prompt(question: str, gold: str, answer: str) -> str:
    return (
        f"User: ### Question: {question}\n\n"
        f"### Ground Truth Answer: {gold}\n\n"
        f"### Student Answer: {answer}\n\n"
        "For the above question, please verify if the student's answer is equivalent to the ground truth answer.\n"
        "Do not solve the question by yourself; just check if the student's answer is equivalent to the ground "
        "truth answer.\n"
        'If the student\'s answer is correct, output "Final Decision: Yes". If the student\'s answer is incorrect, '
        'output "Final Decision: No". Assistant:'
    )


class ModelVerifier:
    """Batched yes/no judgements from a generative verifier. `generate_fn(prompts) -> texts` is injectable
    (tests, or a vLLM engine); by default the model is loaded lazily with transformers and decoded greedily."""

    def __init__(self, model_path: str, *, max_new_tokens: int = 1024, batch_size: int = 16,
                 generate_fn: Callable[[list[str]], list[str]] | None = None):
        self.model_path = model_path
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self._generate_fn = generate_fn
        self._model = None
        self._tok = None

    def _load(self):
        import torch  # heavy: torch
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

        self._tok = AutoTokenizer.from_pretrained(check_model_dir(self.model_path, "verifier", tokenizer=True),
                                                  padding_side="left")
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self._model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        if torch.cuda.is_available():
            self._model.to("cuda")
        self._model.eval()

    def _hf_generate(self, prompts: list[str]) -> list[str]:
        import torch  # heavy: torch

        if self._model is None:
            self._load()
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            enc = self._tok(prompts[i : i + self.batch_size], return_tensors="pt", padding=True).to(self._model.device)
            with torch.inference_mode():
                gen = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                           pad_token_id=self._tok.pad_token_id)
            out += self._tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return out

    def judge(self, questions: Sequence[str], golds: Sequence[str], answers: Sequence[str | None]) -> list[bool]:
        """True where the verifier says the answer matches; missing answers are judged as 'No Answer'."""
        prompts = [verifier_prompt(q, g, a or "No Answer") for q, g, a in zip(questions, golds, answers)]
        texts = (self._generate_fn or self._hf_generate)(prompts)
        if len(texts) != len(prompts):
            raise RuntimeError(f"verifier returned {len(texts)} outputs for {len(prompts)} prompts")
        return [VERIFIER_PASS_TAG in t for t in texts]


# ---------------------------------------------------------------------------------------------------------------
# TRL reward functions: called as f(prompts=, completions=, completion_ids=, answer=[...], question=[...], ...)


def _text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def make_reward_funcs(
    *,
    length_fn: Callable[[str], int] = len,
    verifier: ModelVerifier | None = None,
) -> list[Callable]:
    """[shaped, correct]: General-Reasoner's shaped reward and the plain 0/1 correctness, named for TRL's logs.

    Both read the gold answer from the dataset's `answer` column. The shaped reward also logs its parts
    (no-answer fraction, mean length penalty) through TRL's `log_metric` hook.
    """

    def shaped(prompts, completions, answer, question=None, log_metric=None, **_):
        texts = [_text(c) for c in completions]
        verdicts_model = None
        if verifier is not None:
            extracted = [extract_answer(t) for t in texts]
            verdicts_model = verifier.judge(question or [""] * len(texts), answer, extracted)
        out = []
        no_ans = pen = 0.0
        for i, (gold, text) in enumerate(zip(answer, texts)):
            v = shaped_reward(str(gold), text, length_fn=length_fn,
                              correct=None if verdicts_model is None else verdicts_model[i])
            no_ans += v.extracted is None
            pen += v.penalty
            out.append(v.reward)
        if log_metric is not None and texts:
            log_metric("rewards/parts/no_answer_frac", no_ans / len(texts))
            log_metric("rewards/parts/length_penalty_mean", pen / len(texts))
        return out

    def correct(prompts, completions, answer, **_):
        return [correctness_reward(str(g), _text(c)) for g, c in zip(answer, completions)]

    shaped.__name__ = "general_reasoner"
    correct.__name__ = "correct"
    return [shaped, correct]
