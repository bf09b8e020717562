"""Per-problem browser (grlo browse): fields per model, flips between two models, the page's filters in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _chromium import dump_dom
from grlo.cli import main
from grlo.errors import GrloError
from grlo.report import browser

ROWS_M1 = [  # with the generator's token counts and finish reasons
    {"id": "p1", "completions": ["so \\boxed{5}"], "extracted": ["5"], "scores": [1.0], "verdicts": ["correct"],
     "completion_tokens": [12], "finish_reasons": ["stop"]},
    {"id": "p2", "completions": ["and then"], "extracted": [None], "scores": [0.0], "verdicts": ["no answer"],
     "completion_tokens": [32], "finish_reasons": ["length"], "no_answer": [True]},
    {"id": "p3", "completions": ["a", "b"], "extracted": ["1", "2"], "scores": [1.0, 0.0], "verdicts": [None, None],
     "completion_tokens": [3, 9], "finish_reasons": ["stop", "length"]},
]
ROWS_M2 = [  # an older samples file: no lengths, no finish reasons; markup in a completion
    {"id": "p1", "completions": ["</script><b>6</b> \\boxed{6}"], "extracted": ["6"], "scores": [0.0],
     "verdicts": ["wrong"]},
    {"id": "p2", "completions": ["\\boxed{7}"], "extracted": ["7"], "scores": [1.0], "verdicts": ["correct"]},
    {"id": "p3", "completions": ["c", "d"], "extracted": ["1", "1"], "scores": [1.0, 1.0], "verdicts": [None, None]},
]


def write_samples(root: Path, bench: str = "math500") -> list[str]:
    paths = []
    for model, rows in (("m1--base", ROWS_M1), ("m2--grlo", ROWS_M2)):
        p = root / model / f"{bench}.samples.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(str(p))
    return paths


def test_view_fields_and_flips(tmp_path):
    data = tmp_path / "math500.jsonl"
    data.write_text(json.dumps({"id": "p1", "problem": "2+3?", "answer": "5"}) + "\n"
                    + json.dumps({"id": "p9", "problem": "not scored by any model"}) + "\n", encoding="utf-8")
    view = browser.build("math500", write_samples(tmp_path), str(data))
    assert view["models"] == ["m1--base", "m2--grlo"]
    probs = {p["id"]: p for p in view["problems"]}
    assert sorted(probs) == ["p1", "p2", "p3"]  # a problem no model scored (beyond the run's limit) is not listed
    assert probs["p1"]["problem"] == "2+3?" and probs["p1"]["answer"] == "5" and probs["p2"]["answer"] is None
    e = probs["p2"]["by_model"]["m1--base"]
    assert e["cut"] == [True] and e["length"] == [32] and e["length_unit"] == "tokens" and e["extracted"] == [None]
    assert probs["p3"]["by_model"]["m1--base"]["mean"] == 0.5 and probs["p3"]["by_model"]["m1--base"]["solved"]
    assert probs["p3"]["by_model"]["m1--base"]["cut"] == [False, True]
    e2 = probs["p1"]["by_model"]["m2--grlo"]
    assert e2["cut"] == [None] and e2["length_unit"] == "chars" and e2["length"] == [len(ROWS_M2[0]["completions"][0])]
    # p1: m1 solves, m2 not; p2: the reverse; p3: both solve (mean 0.5 >= 0.5 and 1.0)
    assert browser.flips(view, "m1--base", "m2--grlo") == ["p1", "p2"]
    assert browser.flips(view, "m1--base", "m1--base") == []


def test_truncated_field_used_without_finish_reasons(tmp_path):
    row = {"id": "x", "completions": ["y"], "extracted": ["1"], "scores": [0.0], "truncated": [True]}
    assert browser.model_entry(row, "f")["cut"] == [True]
    assert browser.model_entry(dict(row, truncated=False), "f")["cut"] == [False]


def test_bad_samples_is_one_line_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "m--base" / "b.samples.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"id": "x", "scores": "high"}) + "\n", encoding="utf-8")
    out = tmp_path / "b.html"
    assert main(["browse", "--benchmark", "math500", "--samples", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "scores" in err[0]
    assert not out.exists()
    good = write_samples(tmp_path / "scores")
    with pytest.raises(GrloError, match="two sample files for model m1--base"):
        browser.build("math500", [good[0], good[0]])


def test_page_filters_in_browser(tmp_path):
    out = tmp_path / "math500.html"
    assert main(["browse", "--benchmark", "math500", "--samples", *write_samples(tmp_path / "scores"),
                 "--output", str(out)]) == 0
    html_text = out.read_text(encoding="utf-8")
    assert "</script><b>" not in html_text.split('id="grlo-data">', 1)[1].split("</script>", 1)[0]
    rows = lambda dom: re.findall(r'<tr( class="flip")? data-id="([^"]+)" data-flip="(true|false)"', dom)  # noqa
    dom = dump_dom(out.as_uri() + "#a=m1--base&b=m2--grlo&flips=1")
    assert [r[1] for r in rows(dom)] == ["p1", "p2"] and all(r[2] == "true" for r in rows(dom))
    assert "2 of 3 problems shown; 2 flip between A and B" in dom
    assert "cut at the token limit (1/1)" in dom and "cut: not recorded" in dom and "no answer found (1/1)" in dom
    assert "&lt;/script&gt;&lt;b&gt;6&lt;/b&gt;" in dom  # completion shown as text, not markup
    dom = dump_dom(out.as_uri() + "#a=m1--base&b=m2--grlo&flips=0&q=boxed")
    assert [r[1] for r in rows(dom)] == []  # search covers id, problem, reference and extracted answers, not text
    dom = dump_dom(out.as_uri() + "#a=m1--base&b=m2--grlo&flips=0&q=7")
    assert [r[1] for r in rows(dom)] == ["p2"]  # m2's extracted answer
    dom = dump_dom(out.as_uri() + "#a=m1--base&b=m2--grlo&flips=0&q=p3")
    assert [r[1] for r in rows(dom)] == ["p3"] and "1 of 3 problems shown" in dom
    dom = dump_dom(out.as_uri())  # defaults: first two models, every problem
    assert [r[1] for r in rows(dom)] == ["p1", "p2", "p3"]


def test_long_answers_and_completions_are_clipped():
    program = "x = 1\n" * 200
    row = {"id": "c", "completions": ["start " + program + " end"], "extracted": [program], "scores": [1.0]}
    e = browser.model_entry(row, "f")
    assert e["extracted"][0].endswith("…") and len(e["extracted"][0]) == browser.ANSWER_CHARS + 1
    assert e["tail"].startswith("…") and e["tail"].endswith(" end") and len(e["tail"]) == browser.TAIL_CHARS + 1


def test_flip_filter_shows_only_a_and_b(tmp_path):
    import shutil

    samples = write_samples(tmp_path / "scores")
    third = tmp_path / "scores" / "m3--rlvr" / "math500.samples.jsonl"
    third.parent.mkdir(parents=True)
    shutil.copy(samples[0], third)  # a third model: its answers must not show while A and B are compared
    out = tmp_path / "math500.html"
    assert main(["browse", "--benchmark", "math500", "--samples", *samples, str(third), "--output", str(out)]) == 0

    def heads(dom):
        return re.findall(r'<th data-model="([^"]+)">([^<]*)</th>', dom)

    def cells_per_row(dom):
        return {len(re.findall(r"<td", r)) for r in re.findall(r'<tr[^>]*data-id="[^"]+"[^>]*>(.*?)</tr>', dom, re.S)}

    dom = dump_dom(out.as_uri() + "#a=m2--grlo&b=m1--base&flips=1")
    assert [m for m, _ in heads(dom)] == ["m2--grlo", "m1--base"]
    assert heads(dom)[0][1].startswith("A: ") and heads(dom)[1][1].startswith("B: ")
    assert cells_per_row(dom) == {3 + 2}
    dom = dump_dom(out.as_uri() + "#a=m2--grlo&b=m1--base&flips=0")  # no filter: every model
    assert [m for m, _ in heads(dom)] == ["m1--base", "m2--grlo", "m3--rlvr"] and cells_per_row(dom) == {3 + 3}


def test_latex_is_rendered_as_mathml_offline(tmp_path):
    from grlo.report.math_html import to_html

    got = to_html(r"Find $\frac{a}{b}$ if <b> costs $5 and \[x^2 = 4\].")
    assert got.count("<math") == 2 and "<mfrac>" in got and 'display="block"' in got
    assert "&lt;b&gt;" in got and "$5" in got  # text escaped; a price is not math
    assert to_html(r"bad $\frac{a$ here") in (r"bad $\frac{a$ here".replace("<", "&lt;"), to_html(r"bad $\frac{a$ here"))
    assert "<script" not in to_html("$<script>alert(1)</script>$")
    # the page: Chromium lays the MathML out (a real <math> element in the DOM, with a size), no network involved
    data = tmp_path / "math500.jsonl"
    data.write_text(json.dumps({"id": "p1", "problem": r"Compute $\frac{1}{2}+\frac{1}{3}$.", "answer": r"\frac{5}{6}"})
                    + "\n")
    samples = write_samples(tmp_path / "scores")
    out = tmp_path / "math500.html"
    assert main(["browse", "--benchmark", "math500", "--samples", *samples, "--data", str(data),
                 "--output", str(out)]) == 0
    dom = dump_dom(out.as_uri())
    row = re.search(r'<tr[^>]*data-id="p1"[^>]*>(.*?)</tr>', dom, re.S).group(1)
    problem, answer = re.findall(r'<td class="(?:problem|ans)" title="[^"]*">(.*?)</td>', row, re.S)
    assert problem.startswith("Compute <math") and problem.count("<mfrac>") == 2 and "$" not in problem
    assert answer.startswith("<math") and "<mfrac>" in answer  # a bare LaTeX reference answer too
