"""HTML pages of the report (grlo render-html) and the report as a reviewer sees it in a browser.

Unit tests use small synthetic results files; `test_report_landing_*` builds a Snakemake report of a two-rule
workflow around our landing text (workflow/report/workflow.rst); `test_smoke_report_as_reviewer` opens the smoke
run's report.html and browser page in headless Chromium.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zipfile
from html import unescape
from pathlib import Path

import pytest

from _chromium import dump_dom
from grlo.cli import main
from grlo.config import REPO_ROOT
from grlo.report import browser, common, html
from grlo.report.claims import NOT_REPRODUCED, NOT_RUN, REPRODUCED, SMOKE

HEADER = ["mode: paper", "config_hash: 0123456789ab", "date: 2026-01-01T00:00:00Z", "code: grlo 0.1.0 @ test",
          "note: a note <with> markup"]
CLAIM_COLS = ["claim", "quantity", "paper", "paper_value", "ours", "tolerance", "rule", "verdict", "evidence",
              "paper_source"]


def write_claims(path: Path, header=HEADER) -> Path:
    rows = [
        {"claim": "avg_grlo", "paper": "63.1", "paper_value": 63.1, "ours": 61.25, "tolerance": "±3 points",
         "rule": "overall average", "verdict": REPRODUCED, "evidence": "results/table1.csv"},
        {"claim": "avg_base", "paper": "24.1", "paper_value": 24.1, "ours": 40.0, "tolerance": "±3 points",
         "rule": "overall average", "verdict": NOT_REPRODUCED, "evidence": "results/table1.csv"},
        {"claim": "grlo_gpu_hours", "paper": "22.7 GPU hours", "paper_value": 22.7, "ours": None,
         "tolerance": "±50%", "rule": "measured <GPU-hours>", "verdict": NOT_RUN, "evidence": "not given"},
        {"claim": "grlo_prompts", "paper": "5K", "paper_value": 5000, "ours": 12, "tolerance": "±0%",
         "rule": "prompts", "verdict": SMOKE, "evidence": "data/prompts/stats.json"},
    ]
    common.write_csv_md(path, header, CLAIM_COLS, rows)
    return path


def write_table1(path: Path) -> Path:
    rows = [{"model": "qwen3-4b-base--base", "label": "Qwen3-4B-Base", "math500": 41.23456, "gpqa_diamond": None,
             "overall": None, "paper_overall": 24.1, "paper_source": "GRLO abstract (known)"},
            {"model": "qwen3-4b-base--grlo-rlvr", "label": "Qwen3-4B-Base + GRLO -> RLVR", "math500": 71.0,
             "gpqa_diamond": 31.0, "overall": 51.0, "paper_overall": None, "paper_source": ""},
            {"model": "qwen3-4b-base--grlo", "label": "Qwen3-4B-Base + GRLO", "math500": 70.0, "gpqa_diamond": 30.0,
             "overall": 50.0, "paper_overall": 63.1, "paper_source": "GRLO abstract (known)"}]
    common.write_csv_md(path, HEADER, ["model", "label", "math500", "gpqa_diamond", "overall", "paper_overall",
                                       "paper_source"], rows)
    return path


def cells_of(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_claims_page_colours_every_verdict_and_marks_not_run(tmp_path):
    pages = html.pages(claims=str(write_claims(tmp_path / "claims.csv")))
    page = pages["claims.html"]
    for verdict, (bg, fg) in html.VERDICT_COLOURS.items():
        assert f'data-verdict="{verdict}" style="background:{bg};color:{fg}">{verdict}</td>' in page
    rows = {r[0]: r for r in cells_of(page, "claims")[1:]}
    cols = cells_of(page, "claims")[0]
    assert rows["avg_grlo"][cols.index("ours")] == "61.25"
    assert rows["grlo_gpu_hours"][cols.index("ours")] == html.EMPTY  # not run: a dash, never 0
    assert "measured &lt;GPU-hours&gt;" in page and "<GPU-hours>" not in page  # data is escaped
    assert "config_hash: 0123456789ab" in page and "a note &lt;with&gt; markup" in page
    assert "reproduced: 1" in page and "not run: 1" in page  # the verdict counts on top


def test_overview_holds_claims_and_table1_and_smoke_banner(tmp_path):
    smoke_header = ["mode: smoke (smoke run: tiny models and data; numbers are NOT comparable to the paper)"]
    claims = write_claims(tmp_path / "claims.csv", smoke_header + HEADER[1:])
    pages = html.pages(claims=str(claims), tables=[str(write_table1(tmp_path / "table1.csv"))])
    assert set(pages) == {"overview.html", "claims.html", "table1.html"}
    ov = pages["overview.html"]
    # the verdict counts, then table 1 (on the first screen), then every claim with its verdict
    assert ov.index('class="summary"') < ov.index('id="table1"') < ov.index('id="claims"')
    assert "smoke run — not comparable: 1" in ov.split('class="summary"', 1)[1].split("</p>", 1)[0]
    assert 'class="smoke"' in ov and ov.index('class="smoke"') < ov.index('class="summary"')  # before any number
    t1 = cells_of(ov, "table1")
    # the label, then the two averages the abstract's claim compares, then each benchmark under its own name
    assert t1[0] == ["Model", "Overall (ours)", "Paper overall", "MATH-500", "GPQA-Diamond"]
    assert t1[1] == ["Qwen3-4B-Base", html.EMPTY, "24.1", "41.2", html.EMPTY]  # 1 decimal, empty = dash
    assert t1[3][:3] == ["Qwen3-4B-Base + GRLO", "50.0", "63.1"]
    assert "paper_source" not in ov.split('id="table1"')[1].split("</table>")[0] and "GRLO abstract (known)" in ov
    # the compared average is named next to the paper's numbers; one legend for the dash
    compared = ov.split('class="compared">', 1)[1].split("</p>", 1)[0]
    assert "<i>Overall</i>" in compared and "24.1 (Qwen3-4B-Base) / 63.1 (Qwen3-4B-Base + GRLO)" in compared
    assert f"{html.EMPTY} = not run (no score file)" in ov


def test_table1_cells_show_value_and_standard_error(tmp_path):
    t1 = write_table1(tmp_path / "table1.csv")
    common.write_csv_md(tmp_path / "table1.cells.csv", HEADER, ["model", "benchmark", "value", "stderr"],
                        [{"model": "qwen3-4b-base--grlo", "benchmark": "math500", "value": 70.0, "stderr": 2.04}])
    page = html.pages(tables=[str(t1)])["table1.html"]
    row = next(r for r in cells_of(page, "table1") if r[0] == "Qwen3-4B-Base + GRLO")
    assert row[3] == "70.0 ± 2.0" and row[4] == "30.0"  # no standard error recorded: the value alone


def test_forecast_against_measured_reference_values():
    forecast = [{"stage": "grlo", "model": "m", "gpu_hours": "10"},
                {"stage": "eval", "model": "m--base", "gpu_hours": "2"},
                {"stage": "rlvr", "model": "m", "gpu_hours": "5"}, {"stage": "total", "model": "", "gpu_hours": "17"}]
    measured = [{"stage": "grlo", "model": "m", "gpu_hours": "12.5", "cpu_hours": "1"},
                {"stage": "generate", "model": "m--base", "gpu_hours": "1.0", "cpu_hours": "0.25"},
                {"stage": "score", "model": "m--base", "gpu_hours": "0.5", "cpu_hours": "0.25"}]
    rows = {(r["stage"], r["model"]): r for r in html.forecast_vs_measured(forecast, measured)}
    assert rows[("grlo", "m")]["measured_over_forecast"] == "1.25" and rows[("grlo", "m")]["status"] == "measured"
    assert rows[("eval", "m--base")]["measured_gpu_hours"] == "1.5"
    assert rows[("eval", "m--base")]["measured_cpu_hours"] == "0.5"
    assert rows[("eval", "m--base")]["measured_over_forecast"] == "0.75"
    assert rows[("rlvr", "m")]["measured_gpu_hours"] == "" and rows[("rlvr", "m")]["status"] == "not run"
    total = rows[("total", "")]
    assert total["forecast_gpu_hours"] == "17" and total["measured_gpu_hours"] == "14"
    assert total["measured_over_forecast"] == "0.8235"  # 14 / 17
    # a job without a GPU record makes its group (and the total) unknown, not smaller, and not "not run"
    rows = {(r["stage"], r["model"]): r for r in html.forecast_vs_measured(
        forecast, measured + [{"stage": "train_grlo_extra", "model": "x", "gpu_hours": ""},
                              {"stage": "grlo", "model": "m", "gpu_hours": ""}])}
    assert rows[("grlo", "m")]["measured_gpu_hours"] == "" and rows[("grlo", "m")]["status"] == "unrecorded"
    assert rows[("total", "")]["measured_gpu_hours"] == ""
    # a CPU run (smoke): 0 GPU-hours, CPU-hours shown, no ratio
    cpu = [{"stage": "grlo", "model": "m", "gpu_hours": "0", "cpu_hours": "0.1"}]
    r = {(x["stage"], x["model"]): x for x in html.forecast_vs_measured(forecast, cpu)}[("grlo", "m")]
    assert r["status"] == "CPU run" and r["measured_over_forecast"] == "" and r["measured_cpu_hours"] == "0.1"
    # a measured model the forecast does not know is listed, not dropped (other rules' jobs are not stages)
    extra = [{"stage": "generate", "model": "new--custom", "gpu_hours": "0.2"}, {"stage": "table", "model": "t"}]
    r = {(x["stage"], x["model"]): x for x in html.forecast_vs_measured(forecast, extra)}
    assert r[("eval", "new--custom")]["status"] == "not in the forecast" and ("table", "t") not in r
    # without measurements nothing is measured
    assert all(r["status"] == "not run" for r in html.forecast_vs_measured(forecast, None))


def test_protocol_card_markdown_renders(tmp_path):
    card = tmp_path / "protocol.md"
    card.write_text("# Protocol\n\n| benchmark | k |\n|---|---|\n| math500 | 1 |\n\n<script>x</script>\n",
                    encoding="utf-8")
    page = html.pages(protocol=str(card))["protocol.html"]
    assert "<h1>Protocol</h1>" in page and "<td>math500</td>" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page  # raw HTML is text


def test_cli_writes_pages_and_bad_input_writes_nothing(tmp_path, capsys):
    claims, t1 = write_claims(tmp_path / "claims.csv"), write_table1(tmp_path / "table1.csv")
    out = tmp_path / "report"
    assert main(["render-html", "--claims", str(claims), "--tables", str(t1), "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["claims.html", "overview.html", "table1.html"]
    bad = tmp_path / "bad"
    assert main(["render-html", "--claims", str(claims), "--tables", str(tmp_path / "nope" / "table1.csv"),
                 "--output-dir", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "table1.csv" in err[0] and "not found" in err[0]
    assert not bad.exists()  # nothing half-written
    assert main(["render-html", "--tables", str(claims), "--output-dir", str(bad)]) == 2
    assert "--tables" in capsys.readouterr().err
    (tmp_path / "x.csv").write_text("claim,other\na,b\n", encoding="utf-8")
    assert main(["render-html", "--claims", str(tmp_path / "x.csv"), "--output-dir", str(bad)]) == 2
    assert "'verdict'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the report, in a browser
MINI_SNAKEFILE = """
config = {{"mode": "paper", "backbones": {{"primary": "qwen3-4b-base"}}, "evaluation": {{"benchmarks": ["math500"]}}}}
report: {workflow_rst!r}

rule all:
    input: "out/report/overview.html", "out/browser/math500.html"

rule pages:
    input: claims="in/claims.csv", t1="in/table1.csv"
    output:
        overview=report("out/report/overview.html", category="1 Verdicts", subcategory="Pages"),
        claims=report("out/report/claims.html", category="1 Verdicts", subcategory="Pages"),
        t1=report("out/report/table1.html", category="2 Tables", subcategory="Pages"),
    shell: "{grlo} render-html --claims {{input.claims}} --tables {{input.t1}} --output-dir out/report"

rule browse:
    input: a="in/scores/m1--base/math500.samples.jsonl", b="in/scores/m2--grlo/math500.samples.jsonl"
    output: report("out/browser/math500.html", category="6 Problems", labels={{"benchmark": "math500"}})
    shell: "{grlo} browse --benchmark math500 --samples {{input.a}} {{input.b}} --output {{output}}"
"""


def landing_text(dom: str) -> str:
    """Visible text of the report app (the rendered React tree), without the embedded data scripts."""
    app = dom.split('id="app"', 1)[1]
    app = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", app, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", app)))


def test_report_landing_shows_verdicts_and_table1_in_html_and_zip(tmp_path):
    from test_report_browser import write_samples

    wd = tmp_path / "wf"
    (wd / "in").mkdir(parents=True)
    write_claims(wd / "in" / "claims.csv")
    write_table1(wd / "in" / "table1.csv")
    write_samples(wd / "in" / "scores")
    grlo = str(Path(sys.executable).with_name("grlo"))
    (wd / "Snakefile").write_text(MINI_SNAKEFILE.format(
        workflow_rst=str(REPO_ROOT / "workflow" / "report" / "workflow.rst"), grlo=grlo), encoding="utf-8")
    smk = [str(Path(sys.executable).with_name("snakemake")), "-d", str(wd), "-s", str(wd / "Snakefile")]
    for extra in (["--cores", "1"], ["--report", "report.html"], ["--report", "report.zip"]):
        p = subprocess.run(smk + extra, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
    text = landing_text(dump_dom(wd / "report.html"))
    # first screen: the verdicts (coloured) and table 1, before the workflow's description
    for verdict in (REPRODUCED, NOT_REPRODUCED, NOT_RUN, SMOKE):
        assert verdict in text
    assert "Table 1: main results" in text and "Qwen3-4B-Base + GRLO -> RLVR" in text and "41.2" in text
    assert text.index("Claims of the abstract") < text.index("GRLO reproduction (arXiv")
    # the zip: one bundle with the same landing page and every HTML item as a file
    with zipfile.ZipFile(wd / "report.zip") as z:
        names = z.namelist()
        z.extractall(tmp_path / "unzipped")
    assert any(n.endswith("/overview.html") for n in names) and any(n.endswith("/math500.html") for n in names)
    unzipped = next((tmp_path / "unzipped").rglob("report.html"))
    assert "Claims of the abstract" in landing_text(dump_dom(unzipped))
    page = next((tmp_path / "unzipped").rglob("math500.html"))
    dom = dump_dom(page.as_uri() + "#a=m1--base&b=m2--grlo&flips=1")
    assert re.findall(r'<tr class="flip" data-id="([^"]+)"', dom) == ["p1", "p2"]


# ------------------------------------------------------------------------------------ the smoke run, as a reviewer
def report_items(dom: str) -> dict:
    """{path: entry} of the report's embedded results (`var results = {...}`)."""
    m = re.search(r"var results = (\{.*?\});\s*</script>", dom, flags=re.S)
    assert m, "no results data in the report"
    return json.loads(m.group(1))


@pytest.mark.integration
def test_smoke_report_as_reviewer(smoke_outdir, tmp_path):
    out = Path(smoke_outdir)
    dom = dump_dom(out / "report.html")
    text = landing_text(dom)
    _, claims = common.read_results_csv(out / "results" / "claims.csv")
    assert claims
    for r in claims:  # every claim with its verdict on the first screen
        assert r["claim"] in text and r["verdict"] in text
    assert 'class="verdict"' in dom and 'id="table1"' in dom and "Table 1: main results" in text
    _, t1 = common.read_results_csv(out / "results" / "table1.csv")
    for r in t1:
        assert r["label"] in text
    # the browser pages are report items; find a problem whose answer flips between two models and see it listed
    items = report_items(dom)
    pages = {Path(p).name: e for p, e in items.items() if "/browser/" in p}
    assert pages, "no per-problem browser page in the report"
    found = None
    for name in sorted(pages):  # each page exactly as embedded in the report
        page = tmp_path / name
        page.write_bytes(base64.b64decode(pages[name]["data_uri"].split("base64,", 1)[1]))
        shown = json.loads(re.search(r'id="grlo-data">(.*?)</script>', page.read_text(encoding="utf-8"),
                                     flags=re.S).group(1).replace("<\\/", "</"))["models"]
        bench = name.removesuffix(".html")
        # the flips, recomputed here from the per-sample outputs of the models the page shows
        view = browser.build(bench, [str(out / "scores" / m / f"{bench}.samples.jsonl") for m in shown])
        pairs = [(a, b) for i, a in enumerate(shown) for b in shown[i + 1:] if browser.flips(view, a, b)]
        if pairs:
            found = (page, *pairs[0], browser.flips(view, *pairs[0]))
            break
    assert found, "no answer flips between two models in any smoke benchmark"
    page, a, b, ids = found
    dom = dump_dom(page.as_uri() + f"#a={a}&b={b}&flips=1")
    assert sorted(re.findall(r'<tr class="flip" data-id="([^"]+)"', dom)) == sorted(ids)
    assert f"{len(ids)} flip between A and B" in dom


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # docutils' writer_name, as Snakemake calls it
def test_captions_and_landing_text_are_valid_rst(tmp_path):
    """Render every caption as Snakemake does (Jinja, then docutils); any reST warning would garble the report."""
    from types import SimpleNamespace

    from docutils.core import publish_parts
    from jinja2 import Environment

    from grlo import config as C

    cfg = C.load([REPO_ROOT / "config" / "config.yaml"])
    overview = tmp_path / "overview.html"
    overview.write_text(html.pages(claims=str(write_claims(tmp_path / "claims.csv")),
                                   tables=[str(write_table1(tmp_path / "table1.csv"))])["overview.html"])
    files = [SimpleNamespace(target="overview.html", path=overview),
             SimpleNamespace(target="math500.html", path=tmp_path / "results" / "browser" / "math500.html")]
    links = "\n\n.. _math500.html: javascript:app.showResultInfo('math500')\n"  # Snakemake appends these
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    for rst in sorted((REPO_ROOT / "workflow" / "report").glob("*.rst")):
        for table in ("table1", "table3"):
            snakemake = SimpleNamespace(config=cfg, wildcards=SimpleNamespace(table=table))
            text = env.from_string(rst.read_text(encoding="utf-8") + links).render(snakemake=snakemake, files=files,
                                                                                  categories={})
            body = publish_parts(text, writer_name="html", settings_overrides={"halt_level": 2})["html_body"]
            if rst.name == "workflow.rst":  # the landing text embeds the overview: verdicts first
                assert 'id="claims"' in body and body.index('id="claims"') < body.index("GRLO reproduction (arXiv")
                assert "href=\"javascript:app.showResultInfo('math500')\">math500.html</a>" in body  # browser link


# ------------------------------------------------------------------------ table 1 in a laptop window (1,366 x 768)
T1_KEYS = ["#table1 th[data-col=overall]", "#table1 th[data-col=paper_overall]",
           "#table1 tbody tr:first-child th.label"]


def assert_table1_visible(page: Path) -> None:
    from _chromium import visible

    seen = visible(page, T1_KEYS, 1366, 768)
    # a 1,366 x 768 window: Chromium leaves 1,366 x ~625 px to the page, about what a laptop's browser shows
    assert seen["window"][0] == 1366 and 600 <= seen["window"][1] <= 768, seen["window"]
    for sel in T1_KEYS:
        v = seen[sel]
        assert v["found"] and v["inside"] and v["on_top"], f"{sel} not visible without scrolling: {v}"
    assert seen[T1_KEYS[0]]["text"] == "Overall (ours)" and seen[T1_KEYS[1]]["text"] == "Paper overall"


def write_wide_table1(path: Path, benches: list[str], n_rows: int, header=HEADER) -> Path:
    """A table 1 shaped like a real run's: every benchmark, its domain averages, overall +- SE, the paper's."""
    from grlo import registry

    doms = list(dict.fromkeys(registry.benchmark(b)["domain"] for b in benches))
    cols = ["model", "label", *benches, *[f"avg_{d}" for d in doms], "overall", "overall_stderr", "mean_benchmarks",
            "mean_benchmarks_stderr", "paper_overall", "paper_source"]
    rows = [{"model": f"m{i}--v", "label": f"SmolLM2-135M-Instruct (stands in for Qwen3-4B-Base) variant {i}",
             **{b: 12.345 + i for b in benches}, **{f"avg_{d}": 40.0 for d in doms}, "overall": 41.0,
             "overall_stderr": 1.25, "mean_benchmarks": 40.5, "mean_benchmarks_stderr": 1.1,
             "paper_overall": 24.1 if i == 0 else 63.1 if i == 1 else None, "paper_source": "GRLO abstract (known)"}
            for i in range(n_rows)]
    common.write_csv_md(path, header, cols, rows)
    return path


def test_wide_table1_keeps_the_compared_averages_and_labels_in_a_1366_window(tmp_path):
    """Paper mode's table 1 (11 benchmarks, 5 domain averages, 9 rows) on its own page at 1,366 x 768."""
    write_wide_table1(tmp_path / "table1.csv", ["math500", "aime24", "aime25", "amc23", "gsm8k", "gpqa_diamond",
                                                "humaneval_plus", "mbpp_plus", "livecodebench", "alpacaeval2",
                                                "ifeval"], 9)
    page = tmp_path / "table1.html"
    page.write_text(html.pages(tables=[str(tmp_path / "table1.csv")])["table1.html"], encoding="utf-8")
    assert_table1_visible(page)


SMOKE_BENCHES = ["math500", "aime24", "gpqa_diamond", "humaneval_plus", "livecodebench", "ifeval", "alpacaeval2"]


def write_smoke_claims(path: Path) -> list[str]:
    """claims.csv as a smoke run writes it (`grlo claims`' own rows on the smoke config): the smoke header, every
    claim with a value and the amber smoke verdict, the stand-in's long label, evidence paths under a /tmp outdir.
    Returns the header (for a table 1 of the same run)."""
    from grlo import registry
    from grlo.report import claims
    from grlo.report.paper_refs import PaperRefs

    cfg = common.load_config([str(REPO_ROOT / "config" / "config.yaml"), str(REPO_ROOT / "config" / "smoke.yaml")])
    models = ["qwen3-4b-base--base", "qwen3-4b-base--grlo", "qwen3-4b-base--rlvr", "qwen3-4b-base--grlo-rlvr",
              "qwen3-4b--nonthinking", "qwen3-4b--thinking"]
    scores = {(m, b): {"value": 10.0 + i + j, "stderr": 2.0, "domain": registry.benchmark(b)["domain"]}
              for i, m in enumerate(models)
              for j, b in enumerate(SMOKE_BENCHES)}
    tables = "/tmp/grlo-smoke-run/results"
    evidence = {f"table{i}": f"{tables}/table{i}.csv" for i in range(1, 5)}
    evidence.update({"prompts": "/tmp/grlo-smoke-run/data/prompts/stats.json",
                     "benchmarks": "/tmp/grlo-smoke-run/benchmarks", "grlo_deviations": []})
    rows = claims.build(cfg, scores, PaperRefs(None), [], 12, 40, evidence)
    assert sum(r["verdict"] == SMOKE for r in rows) >= len(rows) - 2, [(r["claim"], r["verdict"]) for r in rows]
    header = common.header_lines(cfg, "tolerances: config report.tolerance (our choice; the paper states none); "
                                 "edges count as reproduced", "the two qualitative claims (vs_released, "
                                 "grlo_rlvr_gain) are judged by the rule in their row")
    common.write_csv_md(path, header, claims.COLUMNS, rows)
    return header


def test_report_landing_shows_table1_on_the_first_screen_in_a_1366_window(tmp_path):
    """The Snakemake report's first screen (its own menu and layout) with the inputs of a real smoke report: the
    claims as `grlo claims` writes them in smoke mode (smoke banner, amber verdicts, the stand-in's long label,
    wrapped rows) and a smoke-shaped table 1 (7 benchmarks, 8 rows): table 1's compared averages and first row
    show, and every claim is in the page below it."""
    from test_report_browser import write_samples

    wd = tmp_path / "wf"
    (wd / "in").mkdir(parents=True)
    header = write_smoke_claims(wd / "in" / "claims.csv")
    write_wide_table1(wd / "in" / "table1.csv", SMOKE_BENCHES, 8, header=header)
    write_samples(wd / "in" / "scores")
    grlo = str(Path(sys.executable).with_name("grlo"))
    (wd / "Snakefile").write_text(MINI_SNAKEFILE.format(
        workflow_rst=str(REPO_ROOT / "workflow" / "report" / "workflow.rst"), grlo=grlo), encoding="utf-8")
    smk = [str(Path(sys.executable).with_name("snakemake")), "-d", str(wd), "-s", str(wd / "Snakefile")]
    for extra in (["--cores", "1"], ["--report", "report.html"]):
        p = subprocess.run(smk + extra, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
    assert_table1_visible(wd / "report.html")
    text = landing_text(dump_dom(wd / "report.html"))
    _, rows = common.read_results_csv(wd / "in" / "claims.csv")
    assert all(r["claim"] in text.split("Claims of the abstract: verdicts", 1)[1] for r in rows)


@pytest.mark.integration
def test_smoke_report_table1_is_readable_in_a_1366_window(smoke_outdir):
    """Done when (issue 19): the smoke report at 1,366 x 768 shows table 1's `overall`, `paper_overall` and its first
    row's label without scrolling."""
    assert_table1_visible(Path(smoke_outdir) / "report.html")
