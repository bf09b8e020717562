"""The math checker's answer extraction (grlo.rewards.math): the LAST box wins, `\\fbox` and `\\boxed 5` are boxes too,
braces nest; and the equivalence rule's edge cases. Every math score and the RLVR reward go through this rule."""

import pytest

from grlo.eval.scorers import choice
from grlo.eval.scorers import math as math_scorer
from grlo.rewards.math import extract_boxed, grade, is_equivalent


@pytest.mark.parametrize("text,expected", [
    # two boxes in one completion: the final answer is the last one
    ("First try: \\boxed{3}. Wait, that is wrong; the answer is \\boxed{5}.", "5"),
    ("\\boxed{1} \\boxed{2} \\boxed{3}", "3"),
    # \fbox is a box; the last marker of either kind wins
    ("So $\\fbox{7}$.", "7"),
    ("\\boxed{2} ... on reflection \\fbox{9}", "9"),
    ("\\fbox{9} ... on reflection \\boxed{2}", "2"),
    # `\boxed 5`: the next token, without the closing `$` or `.`
    ("The answer is $\\boxed 5$.", "5"),
    ("\\boxed 42.", "42"),
    ("so \\boxed X.", "X"),
    ("\\boxed{1} then \\boxed 8 is final", "8"),
    # nested braces and surrounding spaces
    ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
    ("\\boxed{ \\sqrt{2} }", "\\sqrt{2}"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("\\boxed{a}{b}", "a"),
])
def test_extract_last_box(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize("text", [
    "", None, "no box here", "\\boxed", "\\boxed{3", "the answer \\boxed{\\frac{1}{2}",  # cut off inside the box
    "\\boxedx{3}", "\\boxed ", "\\boxed $", "\\boxed{5} and later \\boxed{",  # the last box is unfinished
])
def test_extract_no_answer(text):
    assert extract_boxed(text) is None


@pytest.mark.parametrize("gold,completion,correct", [
    ("5", "First \\boxed{3}, then correcting myself: \\boxed{5}", True),
    ("3", "First \\boxed{3}, then correcting myself: \\boxed{5}", False),
    ("9", "\\boxed{2} ... \\fbox{9}", True),
    ("5", "so $\\boxed 5$", True),
    ("\\frac{1}{2}", "\\boxed{0.5}", True),
    ("\\frac{1}{2}", "\\boxed{\\frac12}", True),
    ("2", "\\boxed{3}", False),
    ("2", "the answer is 2", False),  # no box: no answer
])
def test_grade_uses_the_last_box(gold, completion, correct):
    out = grade(gold, completion)
    assert out["correct"] is correct
    assert out["extracted"] == extract_boxed(completion)


def test_equivalence_edge_cases():
    assert is_equivalent("4", "4") and is_equivalent("4", "4.0")
    assert not is_equivalent("4", None) and not is_equivalent("4", "") and not is_equivalent("4", "   ")
    assert not is_equivalent("4", "5")
    assert is_equivalent("[1,2]", "[1, 2]")
    # math-verify parses nothing from either: exact text is the fallback, after stripping spaces
    assert is_equivalent("\\text{}", " \\text{} ") and not is_equivalent("\\text{}", "\\")
    assert not is_equivalent("4", "\\") and not is_equivalent("\\", "4")  # only one side parses


def test_empty_answers_are_never_correct_even_against_an_empty_gold(monkeypatch):
    assert not is_equivalent("", "") and not is_equivalent(" ", "  ") and not is_equivalent("", None)
    # math-verify raising on an exotic input is a wrong answer, not a crash of the run
    import math_verify

    def boom(*a, **k):
        raise RuntimeError("exotic input")

    monkeypatch.setattr(math_verify, "verify", boom)
    assert is_equivalent("4", "4") is False


def test_equivalence_off_the_main_thread():
    """Scorers may run in worker threads, where math-verify's signal-based timeout is unavailable."""
    import threading

    out = {}

    def work():
        out["same"] = is_equivalent("\\frac{1}{2}", "0.5")
        out["diff"] = is_equivalent("\\frac{1}{2}", "0.25")
        out["text"] = is_equivalent("\\text{}", "\\text{}")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out == {"same": True, "diff": False, "text": True}


def test_math_scorer_judges_several_boxes_as_math_verify_and_strips_currency():
    """The EVAL scorer follows math-verify (issue 17): a completion with several different boxes is the set of them,
    which does not equal a single gold answer; the reward checker's last-box rule is tested above."""
    from math_verify import parse, verify

    problems = [{"answer": "5"}, {"answer": "\\$18.90"}]
    comps = [["\\boxed{3} no, \\boxed{5}", "\\boxed{5} no, \\boxed{3}", "no box"], ["\\boxed{\\$18.90}", "\\boxed{18.9}"]]
    res = math_scorer.score({}, problems, comps, {})
    official = [float(verify(parse("$5$"), parse(c))) for c in comps[0][:2]]
    assert official == [0.0, 0.0]
    assert res.records[0]["scores"] == official + [0.0]
    assert res.records[0]["verdicts"] == ["wrong", "wrong", "no_answer"]
    assert res.records[0]["extracted"] == ["3,5", "5,3", None]
    assert res.records[1]["scores"] == [1.0, 1.0]
    assert res.records[1]["extracted"] == ["\\$18.90", "18.9"]  # recorded as written
    assert res.info["checker"] == ("math-verify, gold first, last \\boxed{} (several boxes: math-verify's own "
                                   "extraction on the completion); escaped dollars removed")
    assert all(0.0 <= r["time_s"] < 60.0 for r in res.records)
    assert math_scorer.strip_currency(None) is None
    assert math_scorer.strip_currency(" \\text{\\$} 36 ") == "36"


@pytest.mark.parametrize("text,n,expected", [
    ("Answer: C", 4, "C"),
    ("Answer: $B$", 4, "B"),
    ("answer:D and then Answer: A", 4, "D"),  # simple-evals: the first match
    ("Answer: A, but the answer is (C)", 4, "A"),  # simple-evals' rule wins over our extension
    ("Answer: E", 4, None),  # outside the options
    ("Answer: E", 5, "E"),
    ("**Answer:** (c)", 4, "C"),
    ("the answer is (b) ... no, the answer is [d]", 4, "D"),  # our extension: the last one
    ("\\boxed{A} then \\boxed{C}", 4, "C"),
    ("\\boxed{\\text{B}}", 4, "B"),
    ("\\boxed{(d)}", 4, "D"),
    ("\\boxed{AB}", 4, None),
    ("\\boxed{AX}", 4, None),  # a letter and more is not that letter, whatever the extra letter
    ("\\boxed{(B)X}", 4, None),
    ("\\boxed{F}", 4, None),
    ("I pick B.", 4, None),  # a bare letter is not an answer
    ("", 4, None),
    (None, 4, None),
])
def test_choice_letter_extraction(text, n, expected):
    assert choice.extract_letter(text, n) == expected


def test_choice_scorer_verdicts():
    problems = [{"choices": ["w", "x", "y", "z"], "answer": "B"}]
    res = choice.score({}, problems, [["Answer: B", "Answer: C", "no idea"]], {})
    assert res.records[0]["scores"] == [1.0, 0.0, 0.0]
    assert res.records[0]["verdicts"] == ["correct", "wrong", "no_answer"]
    assert res.records[0]["extracted"] == ["B", "C", None]
    assert res.info["extraction"] == choice.EXTRACTION
    assert all(0.0 <= r["time_s"] < 60.0 for r in res.records)
    # the letter range is the problem's own number of options; extract_letter's default is four (A-D)
    five = choice.score({}, [{"choices": list("vwxyz"), "answer": "E"}], [["Answer: E"]], {})
    assert five.records[0]["scores"] == [1.0] and choice.extract_letter("Answer: E") is None
    four = choice.score({}, [{"choices": list("wxyz"), "answer": "A"}], [["Answer: E"]], {})
    assert four.records[0]["verdicts"] == ["no_answer"]  # E is not an option of a 4-choice problem


def test_several_fboxes_count_as_several_boxes():
    """`\\fbox` counts as a box (the multi-box rule sends such a completion to math-verify's own extraction)."""
    assert math_scorer.n_boxes("first \\fbox{1}, then \\fbox{2}") == 2
    assert math_scorer.n_boxes("\\boxed{1} and \\fbox{2}") == 2 and math_scorer.n_boxes(None) == 0


def test_multi_box_path_without_a_parse_is_no_answer_never_a_pass(monkeypatch):
    """math-verify parses nothing from the gold or from the completion: no answer, not correct; and a math-verify
    error on an exotic input is a wrong answer, never a pass."""
    assert math_scorer.judge("", "\\boxed{5} and \\boxed{5}") == (None, False)  # no gold parse
    assert math_scorer.judge("5", "\\boxed{} and \\boxed{}") == (None, False)  # no answer parse
    import math_verify

    def boom(*a, **k):
        raise ValueError("exotic input")

    monkeypatch.setattr(math_verify, "parse", boom)
    assert math_scorer.verify_completion("5", "\\boxed{5} and \\boxed{5}") == (False, None)


def test_multi_box_path_gives_math_verify_its_time_limit_only_where_it_can_keep_it(monkeypatch):
    """math-verify's time limits use SIGALRM, which only the main thread may set: 5 s there (a pathological input
    cannot stall a scoring job), none in a worker thread (where a limit would raise and score every answer wrong).
    The gold goes in as math-verify's examples write it: in dollars, unless it already has them."""
    import threading

    import math_verify

    calls = []
    real_parse, real_verify = math_verify.parse, math_verify.verify

    def parse(text, **kw):
        calls.append(("parse", text, kw))
        return real_parse(text, **kw)

    def verify(g, p, **kw):
        calls.append(("verify", None, kw))
        return real_verify(g, p, **kw)

    monkeypatch.setattr(math_verify, "parse", parse)
    monkeypatch.setattr(math_verify, "verify", verify)
    assert math_scorer.verify_completion("5", "\\boxed{5} and \\boxed{5}") == (True, "5")
    assert calls == [("parse", "$5$", {"parsing_timeout": 5}), ("parse", "\\boxed{5} and \\boxed{5}", {"parsing_timeout": 5}),
                     ("verify", None, {"timeout_seconds": 5})]
    calls.clear()
    assert math_scorer.verify_completion("$x^2$", "\\boxed{x^2}, \\boxed{x^2}")[0] is True
    assert calls[0][:2] == ("parse", "$x^2$")  # already in dollars: as given
    calls.clear()
    box = {}
    t = threading.Thread(target=lambda: box.update(r=math_scorer.verify_completion("5", "\\boxed{5} \\boxed{5}")))
    t.start()
    t.join()
    assert box["r"] == (True, "5")
    assert [kw for _, _, kw in calls] == [{"parsing_timeout": None}, {"parsing_timeout": None}, {"timeout_seconds": None}]
