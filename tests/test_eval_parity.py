"""Parity with the official graders that install from PyPI: one shared case set goes through our scorer and through
the official grader; verdicts must match except for cases tagged with a deviation that grlo/eval/deviations.py
declares (and the protocol card lists). LCB and GPQA, whose graders are not on PyPI, pin the official rules in
tests/test_eval_lcb_rules.py and tests/test_eval_choice_rules.py."""

import pytest

from grlo.eval import deviations, sandbox
from grlo.eval.scorers import ScoreResult

MATH_CASES = [  # (gold, completion, declared deviation or None)
    ("3", "so the answer is $\\boxed{3}$.", None),
    ("\\frac{1}{2}", "Hence $\\boxed{0.5}$", None),
    ("x^2+1", "$\\boxed{1+x^2}$", None),
    ("1, 2", "The roots are $\\boxed{1}, \\boxed{2}$", None),            # several boxes: a set, as math-verify
    ("2", "Either $\\boxed{1}, \\boxed{2}$", None),                       # a hedge does not earn the last box
    ("10", "First $\\boxed{9}$.\n\nRechecking, the answer is $\\boxed{10}$", None),
    ("7", "I am not sure.", None),
    ("5", "The answer is 5", "math-no-box"),
    ("\\$18.90", "It costs $\\boxed{\\$18.90}$", None),                # escaped dollars (MATH-500 golds)
    ("\\$32,\\!348", "$\\boxed{32348}$", None),
]


def _theirs_math(gold, completion):
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$"), parse(completion)))


def _ours(kind, spec, problems, completions, options=None) -> ScoreResult:
    from grlo.eval import scorers

    return scorers.get(kind).score(spec, problems, completions, options or {})


def _check(case_ids, ours, theirs, tags):
    for cid, o, t, tag in zip(case_ids, ours, theirs, tags):
        if tag is None:
            assert o == t, f"{cid}: ours {o}, official {t} (undeclared difference)"
        else:
            assert tag in deviations.ids(), f"{cid}: deviation {tag!r} is not declared"
            assert o != t, f"{cid}: declared deviation {tag!r} no longer changes the verdict: drop the tag"


def test_math_verdicts_match_math_verify():
    res = _ours("math", {"name": "math500"}, [{"answer": g} for g, _, _ in MATH_CASES], [[c] for _, c, _ in MATH_CASES])
    ours = [r["scores"][0] == 1.0 for r in res.records]
    theirs = [_theirs_math(g, c) for g, c, _ in MATH_CASES]
    _check([c for _, c, _ in MATH_CASES], ours, theirs, [t for _, _, t in MATH_CASES])


# IFEval rows as the hub ships them (kwargs hold every key, unused ones None).
def _kw(**used):
    keys = ("num_highlights", "relation", "num_words", "num_placeholders", "prompt_to_repeat", "num_bullets",
            "section_spliter", "num_sections", "capital_relation", "capital_frequency", "keywords", "num_paragraphs",
            "language", "let_relation", "letter", "let_frequency", "end_phrase", "forbidden_words", "keyword",
            "frequency", "num_sentences", "postscript_marker", "first_word", "nth_paragraph")
    return {k: used.get(k) for k in keys}


IFEVAL_CASES = [  # (instruction ids, kwargs, response)
    (["change_case:english_lowercase"], [_kw()], "rain falls softly on the roof."),
    (["change_case:english_lowercase"], [_kw()], "Rain falls softly."),
    (["detectable_format:number_bullet_lists"], [_kw(num_bullets=3)], "* one\n* two\n* three"),
    (["detectable_format:number_bullet_lists"], [_kw(num_bullets=3)], "* one\n* two"),
    (["keywords:forbidden_words", "startend:end_checker"], [_kw(forbidden_words=["apple"]), _kw(end_phrase="Is there anything else I can help with?")],
     "A pear. Is there anything else I can help with?"),
    (["keywords:forbidden_words"], [_kw(forbidden_words=["apple"])], "An Apple a day."),
    (["length_constraints:number_words"], [_kw(relation="less than", num_words=5)], "**Short** answer here."),
    (["detectable_format:title", "punctuation:no_comma"], [_kw(), _kw()], "<<Title>>\nNo commas here"),
    (["detectable_format:title", "punctuation:no_comma"], [_kw(), _kw()], "<<Title>>\nOne, two"),
]


def test_ifeval_verdicts_match_lm_eval():
    from grlo.data import normalisers
    from grlo.eval.scorers import ifeval

    raw = [{"key": i, "prompt": f"prompt {i}", "instruction_id_list": ids, "kwargs": kws}
           for i, (ids, kws, _) in enumerate(IFEVAL_CASES)]
    res = _ours("ifeval", {"name": "ifeval"}, normalisers.ifeval(raw, {}), [[r] for _, _, r in IFEVAL_CASES])
    utils = ifeval._lmeval_ifeval()  # lm-eval's module (offline NLTK set up as the scorer does)
    for row, (_, _, resp), rec in zip(raw, IFEVAL_CASES, res.records):
        theirs = utils.process_results(row, [resp])
        assert (rec["scores"][0] == 1.0) == theirs["prompt_level_strict_acc"], row
        assert rec["inst_level_strict"][0] == theirs["inst_level_strict_acc"], row
        assert rec["prompt_level_loose"][0] == theirs["prompt_level_loose_acc"], row
    assert sorted(r["scores"][0] for r in res.records) != [1.0] * len(IFEVAL_CASES)  # the cases do discriminate


def test_evalplus_verdicts_match_check_correctness_with_the_4s_floor(tmp_path):
    """A program that needs ~1.5 s per input: fails under evalplus 0.3.1's 1 s floor, passes under the 4 s floor
    (evalplus-min-time), with the same verdict from EvalPlus's check_correctness and ours at each floor."""
    from evalplus.evaluate import check_correctness

    from grlo.eval import code_exec
    from grlo.eval.scorers import evalplus as ep

    row = {"task_id": "Par/slow", "prompt": "def inc(x):\n", "entry_point": "inc", "canonical_solution": "    return x + 1\n",
           "base_input": [[1]], "plus_input": [[2]], "atol": 0, "contract": ""}
    problems, expected = ep.evalplus_groundtruth("humaneval", [row], str(tmp_path))
    program = "import time\ndef inc(x):\n    time.sleep(1.5)\n    return x + 1\n"
    got = {}
    with sandbox.WorkerPool(1) as pool:
        for floor in (1.0, ep.MIN_TIME_LIMIT_S):
            ours = code_exec.check_evalplus(pool, "humaneval", problems["Par/slow"], program, expected["Par/slow"],
                                            min_time_limit=floor)
            theirs = check_correctness("humaneval", 0, problems["Par/slow"], program, expected["Par/slow"], False,
                                       False, None, min_time_limit=floor)
            got[floor] = (ours["base"][0], theirs["base"][0])
    assert got[1.0] == ("timeout", "timeout") or got[1.0][0] == got[1.0][1] != "pass"
    assert got[ep.MIN_TIME_LIMIT_S] == ("pass", "pass")
    assert ep.min_time_limit({"sandbox": {}}) == 4.0


def test_every_deviation_is_in_the_protocol_card():
    from grlo import config as C
    from grlo.report import protocol

    card = protocol.render(C.load([str(C.REPO_ROOT / "config/config.yaml")]))
    for d in deviations.DEVIATIONS:
        assert f"`{d['id']}`" in card, d["id"]
    for kind in deviations.GRADERS:
        assert deviations.GRADERS[kind][1].split(" ")[0] in card
