"""`grlo render-html`: the results files as HTML pages for the Snakemake report (its HTML items render inline).

Pages (all self-contained: inline CSS, no script, no network):
  overview.html   verdict counts, table 1, then every claim with its verdict (coloured): what a reviewer asks
                  first; the report's landing text (workflow/report/workflow.rst) embeds this page, so table 1 is
                  on the report's first screen (1,366 x 768) and the claims right below
  claims.html     every column of claims.csv, the rule of each claim, the header block
  table1.html ... table5.html   each table with its header block and notes
  cost.html       the forecast against what was measured, and GPU-hours per (stage, model)
  protocol.html   the evaluation protocol card (results/protocol.md), when one is given

Input files are the CSVs written by `grlo table|claims|forecast|gpu-hours` (`# key: value` header lines, then a CSV).
An empty cell means "not run" on every page; it is shown as an em dash with that legend, never as zero (a job that ran
without a record says so in words, e.g. "unrecorded"). Table 1 reads its per-cell standard errors from
table1.cells.csv beside table1.csv when present.
"""

from __future__ import annotations

import argparse
import csv
import html
from pathlib import Path
from typing import Iterable, Sequence

from grlo import registry
from grlo.errors import GrloError
from grlo.io import read_input, write_text
from grlo.report import common

# One colour per verdict of grlo.report.claims (background, text).
VERDICT_COLOURS = {
    "reproduced": ("#d4f4dd", "#0b5d1e"),
    "not reproduced": ("#fbd5d5", "#8a1111"),
    "not run": ("#e5e7eb", "#374151"),
    "smoke run — not comparable": ("#fdefc3", "#7a5200"),
}
EMPTY = "—"

# Scoped to .grlo so that the report page embedding overview.html keeps its own styles.
CSS = """
.grlo { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; color: #111827;
        line-height: 1.4; max-width: none; }
.grlo h1 { font-size: 1.35em; margin: 0.6em 0 0.3em; } .grlo h2 { font-size: 1.15em; margin: 1em 0 0.3em; }
.grlo h3 { font-size: 1.0em; margin: 0.8em 0 0.3em; }
.grlo .scroll { overflow-x: auto; max-width: 100%; }
.grlo table { border-collapse: collapse; margin: 0.4em 0 0.8em; }
.grlo th, .grlo td { border: 1px solid #d1d5db; padding: 3px 7px; text-align: left; vertical-align: top; }
.grlo th { background: #f3f4f6; font-weight: 600; }
.grlo tbody td:first-child, .grlo #table1 td { white-space: nowrap; }
.grlo td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grlo td.empty { color: #9ca3af; text-align: center; }
.grlo .verdict { font-weight: 600; white-space: nowrap; }
.grlo .badge { display: inline-block; padding: 1px 8px; border-radius: 9px; margin-right: 6px; font-weight: 600; }
.grlo .prov { color: #4b5563; font-size: 0.85em; margin: 0.2em 0; padding-left: 0.8em; border-left: 3px solid #d1d5db; }
.grlo .prov div { margin: 0; } .grlo ul.notes { color: #374151; font-size: 0.9em; }
.grlo#overview { width: 100%; max-width: 84rem; box-sizing: border-box; }
/* Embedded in the report's landing text: Snakemake centres its content pane vertically, which hides the top of a
   page taller than the window; start at the top instead. Matches nothing when the page is shown on its own. */
div.overflow-auto:has(#overview) { align-items: flex-start; justify-content: flex-start; min-width: 0; }
/* ... and fit its width: the flex items around the page shrink to the pane (the wide tables scroll inside). */
div.overflow-auto:has(#overview) div:has(#overview) { min-width: 0; max-width: 100%; flex: 1 1 auto; }
.prose:has(#overview) { max-width: none; width: 100%; }
/* table 1: sticky model column, the compared averages first and marked, SE in small type */
.grlo .t1 { max-width: calc(100vw - 2rem); }
.grlo #table1 { font-size: 13px; }
.grlo #table1 th, .grlo #table1 td { padding: 2px 6px; white-space: nowrap; }
/* model labels wrap rather than being cut: smoke labels share a long prefix and differ only at the end */
.grlo #table1 th.label { position: sticky; left: 0; z-index: 1; background: #ffffff; text-align: left;
                         font-weight: 600; white-space: normal; min-width: 15rem; max-width: 20rem;
                         overflow-wrap: anywhere; }
.grlo #table1 thead th:first-child { position: sticky; left: 0; z-index: 2; }
.grlo #table1 th.key { background: #e0e7ff; } .grlo #table1 .se { color: #6b7280; font-size: 0.85em; }
#overview #claims { font-size: 13px; } #overview #claims td { padding: 2px 6px; }
#overview h1 { margin-top: 0.2em; } #overview h2 { margin: 0.5em 0 0.2em; } #overview .badge { font-size: 12px; }
.grlo p.compared, .grlo p.legend { font-size: 0.9em; color: #374151; margin: 0.2em 0; }
#overview p.summary { margin: 0.2em 0 0.4em; } #overview p.summary .badge { margin-left: 4px; }
.grlo .smoke { background: #fdefc3; color: #7a5200; padding: 4px 8px; border-radius: 4px; font-weight: 600; }
.grlo pre, .grlo code { background: #f3f4f6; font-size: 0.9em; } .grlo pre { padding: 6px; overflow-x: auto; }
"""


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def page(title: str, body: str) -> str:
    """A complete HTML document (a report item) holding one `.grlo` section."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _id(css_id: str) -> str:
    return f' id="{esc(css_id)}"' if css_id else ""


def section(body: str, css_id: str = "") -> str:
    return f'<section class="grlo"{_id(css_id)}>\n{body}\n</section>'


def _is_number(s: str) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


def cell_text(value: str | None, digits: int = 2) -> str:
    """Numbers to at most `digits` decimals (trailing zeros dropped); empty -> em dash."""
    if value is None or value == "":
        return EMPTY
    if _is_number(value) and not value.strip().lstrip("-").isdigit():
        v = float(value)
        if v != v:
            return EMPTY
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def td(value: str | None, digits: int = 2) -> str:
    text = cell_text(value, digits)
    cls = "empty" if text == EMPTY else ("num" if _is_number(value or "") else "")
    return f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def verdict_cell(verdict: str) -> str:
    bg, fg = VERDICT_COLOURS.get(verdict, ("#ffffff", "#111827"))
    return (f'<td class="verdict" data-verdict="{esc(verdict)}" style="background:{bg};color:{fg}">'
            f"{esc(verdict or EMPTY)}</td>")


def html_table(columns: Sequence[str], rows: Iterable[dict], headers: dict | None = None, digits: int = 2,
               verdict_column: str | None = None, css_id: str = "") -> str:
    headers = headers or {}
    out = [f'<div class="scroll"><table{_id(css_id)}>',
           "<thead><tr>" + "".join(f"<th>{esc(headers.get(c, c))}</th>" for c in columns) + "</tr></thead>",
           "<tbody>"]
    for r in rows:
        cells = [verdict_cell(r.get(c) or "") if c == verdict_column else td(r.get(c), digits) for c in columns]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def provenance(header: Sequence[str], with_notes: bool = True) -> str:
    """The CSV's header block: mode, config hash, date, code; notes as a list below."""
    keys = [h for h in header if not h.startswith("note:")]
    notes = [h[len("note:"):].strip() for h in header if h.startswith("note:")]
    out = ['<div class="prov">' + "".join(f"<div>{esc(h)}</div>" for h in keys) + "</div>"]
    if with_notes and notes:
        out.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(out)


def smoke_banner(header: Sequence[str]) -> str:
    """A smoke run says so before any number."""
    if any(h.startswith("mode: smoke") for h in header):
        return ('<p class="smoke">Smoke run: tiny stand-in models and data on CPU; no number here is comparable '
                "to the paper.</p>")
    return ""


def read_csv(path: str | Path) -> tuple[list[str], list[str], list[dict]]:
    """(header lines, columns, rows) of a results CSV; a missing file is one line naming it."""
    read_input(path, "results CSV")  # the one 'file not found' message
    header, rows = common.read_results_csv(path)
    if not rows and not header:
        raise GrloError("empty results file (no header block, no rows); rebuild it", path=str(path))
    with open(path, encoding="utf-8") as f:
        first = next((line for line in f if not line.startswith("# ")), "")
    columns = next(csv.reader([first])) if first.strip() else []
    return header, columns, rows


# --------------------------------------------------------------------------------------------------------- claims
CLAIM_COLUMNS = ["claim", "paper", "ours", "tolerance", "verdict", "evidence"]


def verdict_counts(rows: Sequence[dict]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.get("verdict", "")] = counts.get(r.get("verdict", ""), 0) + 1
    badges = []
    for v, n in counts.items():
        bg, fg = VERDICT_COLOURS.get(v, ("#ffffff", "#111827"))
        badges.append(f'<span class="badge" style="background:{bg};color:{fg}">{esc(v)}: {n}</span>')
    return "<p>" + "".join(badges) + "</p>"


def read_claims(path: str | Path) -> tuple[list[str], list[str], list[dict]]:
    header, columns, rows = read_csv(path)
    missing = [c for c in ("claim", "verdict") if c not in columns]
    if missing:
        raise GrloError(f"not a claims table: no column {missing[0]!r}", path=str(path), field=missing[0])
    return header, columns, rows


def claims_body(path: str | Path) -> str:
    """The claims page: every claim with every column of claims.csv and its verdict, then the header block."""
    header, columns, rows = read_claims(path)
    return "\n".join([smoke_banner(header), "<h1>Claims of the abstract: verdicts</h1>", verdict_counts(rows),
                      html_table(columns, rows, verdict_column="verdict", css_id="claims"),
                      claims_footer(header, full=True)])


def overview_body(claims: str | Path, table1: str | Path) -> str:
    """The report's first screen (1,366 x 768): the verdict counts in one line, then table 1 with the two averages
    the abstract's headline claim compares, then every claim with its verdict, then the provenance. The claims
    table sits below table 1: its rows wrap (paper wording, long model labels) and would push table 1 off the
    first screen."""
    header, columns, rows = read_claims(claims)
    cols = [c for c in CLAIM_COLUMNS if c in columns]
    counts = verdict_counts(rows).removeprefix("<p>").removesuffix("</p>")
    return "\n".join([
        smoke_banner(header), "<h1>GRLO reproduction: verdicts and table 1</h1>",
        f'<p class="summary">Claims of the abstract: {counts}each claim, with the paper\'s value and ours, is '
        "listed below table 1.</p>",
        table_body(table1, "table1", level=2),
        "<h2>Claims of the abstract: verdicts</h2>",
        html_table(cols, rows, verdict_column="verdict", css_id="claims"),
        "<h3>Claims: provenance</h3>", claims_footer(header, full=False)])


def claims_footer(header: Sequence[str], full: bool) -> str:
    note = "" if full else '<p class="notes">The rule behind each verdict and every column: the claims page.</p>\n'
    return note + provenance(header, with_notes=full)


# --------------------------------------------------------------------------------------------------------- tables
TABLE_TITLES = {
    "table1": "Table 1: main results (percent)",
    "table2": "Table 2: training cost",
    "table3": "Table 3: GRLO against Qwen's released Qwen3-4B",
    "table4": "Table 4: the GRLO -> RLVR stage",
    "table5": "Table 5: other backbones",
}


def table_body(path: str | Path, name: str, level: int = 1) -> str:
    if name == "table1":
        return table1_body(path, level)
    header, columns, rows = read_csv(path)
    title = TABLE_TITLES.get(name, name)
    cols = [c for c in columns if c != "paper_source"]
    if "label" in cols:
        cols = ["label"] + [c for c in cols if c != "label"]
    body = [smoke_banner(header) if level == 1 else "", f"<h{level}>{esc(title)}</h{level}>",
            html_table(cols, rows, css_id=name), f'<p class="legend">{EMPTY_LEGEND}</p>']
    body.append(provenance(header))
    return "\n".join(body)


# Table 1 in a laptop window (1,366 px): the model label stays put (sticky) and the two numbers the abstract's claim
# rests on come first: our overall average and the paper's; then domain averages, then each benchmark, value +- SE.
EMPTY_LEGEND = f"{EMPTY} = not run (no score file); a score of 0 is written 0."
T1_FIXED = {"label": "Model", "overall": "Overall (ours)", "paper_overall": "Paper overall",
            "mean_benchmarks": "Mean of benchmarks"}


def _t1_header(col: str) -> str:
    if col in T1_FIXED:
        return T1_FIXED[col]
    if col.startswith("avg_"):
        return f"{col[4:].replace('_', ' ').capitalize()} avg"
    try:
        return str(registry.benchmark(col).get("label") or col)
    except GrloError:
        return col


def _cell_stderr(path: Path) -> dict[tuple[str, str], str]:
    """{(model, benchmark): stderr} from the tidy companion table1.cells.csv, when it lies beside table1.csv."""
    cells = path.with_name(path.name.removesuffix(".csv") + ".cells.csv")
    if not cells.is_file():
        return {}
    _, rows = common.read_results_csv(cells)
    return {(r.get("model", ""), r.get("benchmark", "")): r.get("stderr") or "" for r in rows}


def _one_decimal(value: str | None) -> str:
    text = cell_text(value)
    return f"{float(value):.1f}" if text != EMPTY and _is_number(value or "") else text


def _value_se(value: str | None, se: str | None, title: str) -> str:
    text = _one_decimal(value)
    if text == EMPTY:
        return f'<td class="empty" title="{esc(title)}: not run">{EMPTY}</td>'
    extra = f'<span class="se"> ± {esc(_one_decimal(se))}</span>' if se not in (None, "") and _is_number(se) else ""
    return f'<td class="num" title="{esc(title)}">{esc(text)}{extra}</td>'


def table1_body(path: str | Path, level: int = 1) -> str:
    header, columns, rows = read_csv(path)
    benches = [c for c in columns if c not in ("model", "label", "paper_source", "paper_overall") and
               not c.startswith("avg_") and not c.endswith("_stderr") and c not in ("overall", "mean_benchmarks")]
    avgs = [c for c in columns if c.startswith("avg_")]
    cols = ["label"] + [c for c in ("overall", "paper_overall") if c in columns] + avgs + benches + \
        [c for c in ("mean_benchmarks",) if c in columns]
    se = _cell_stderr(Path(path))
    head = "".join(f'<th class="{"key" if c in ("overall", "paper_overall") else ""}" data-col="{esc(c)}" '
                   f'title="{esc(c)}">{esc(_t1_header(c))}</th>' for c in cols)
    body = []
    for r in rows:
        cells = [f'<th scope="row" class="label" data-col="label" title="{esc(r.get("model", ""))}">'
                 f'{esc(r.get("label") or r.get("model") or EMPTY)}</th>']
        for c in cols[1:]:
            err = r.get(f"{c}_stderr") if c in ("overall", "mean_benchmarks") else se.get((r.get("model", ""), c))
            cells.append(_value_se(r.get(c), None if c == "paper_overall" else err, f"{r.get('label')}: {_t1_header(c)}"))
        body.append("<tr>" + "".join(cells) + "</tr>")
    paper = [f"{_one_decimal(r['paper_overall'])} ({r.get('label') or r.get('model')})" for r in rows
             if r.get("paper_overall") not in (None, "")]
    compared = ("<p class=\"compared\"><b>Compared with the paper:</b> our <i>Overall</i> (unweighted mean over "
                "domains of our benchmarks, ± its standard error) against the abstract's average across all domains"
                + (f" ({esc(' / '.join(paper))})" if paper else "") + ", column <i>Paper overall</i>; its benchmark "
                "list is unknown, so the two are the same quantity only by assumption.</p>")
    sources = sorted({r["paper_source"] for r in rows if r.get("paper_source")})
    parts = [smoke_banner(header) if level == 1 else "", f"<h{level}>{esc(TABLE_TITLES['table1'])}</h{level}>",
             compared, '<div class="scroll t1">', '<table id="table1">', f"<thead><tr>{head}</tr></thead>", "<tbody>",
             *body, "</tbody></table></div>",
             f'<p class="legend">Values in percent, ± standard error over problems. {EMPTY_LEGEND} Hover a header for '
             "its column name in table1.csv.</p>"]
    if sources:
        parts.append('<ul class="notes">' + "".join(f"<li>Paper overall source: {esc(s)}</li>" for s in sources)
                     + "</ul>")
    parts.append(provenance(header))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------- cost pages
EVAL_RULES = ("generate", "score")  # measured stages that the forecast's 'eval' stage covers


def _num(v) -> float | None:
    return float(v) if _is_number(v or "") else None


def forecast_vs_measured(forecast: Sequence[dict], measured: Sequence[dict] | None) -> list[dict]:
    """One row per forecast (stage, model): forecast GPU-hours, measured GPU- and CPU-hours, their ratio, a status.

    The forecast's `eval` stage is compared with the measured `generate` + `score` jobs of the same model; the
    `total` row sums the forecast's rows. Status: `not run` (no job), `unrecorded` (a job without a GPU record: its GPU-hours
    are unknown, never guessed), `CPU run` (0 GPU-hours: no ratio), `measured`; measured training/eval groups without a forecast row are listed
    as `not in the forecast`.
    """
    groups: dict[tuple[str, str], dict] = {}
    for m in measured or []:
        stage = "eval" if m.get("stage") in EVAL_RULES else m.get("stage", "")
        g = groups.setdefault((stage, m.get("model", "")), {"gpu": 0.0, "cpu": 0.0})
        gpu = _num(m.get("gpu_hours"))
        g["gpu"] = None if g["gpu"] is None or gpu is None else g["gpu"] + gpu
        g["cpu"] += _num(m.get("cpu_hours")) or 0.0

    def row(stage: str, model: str, fv: float | None, g: dict | None) -> dict:
        if g is None:
            status, ratio = "not run", None
        elif g["gpu"] is None:
            status, ratio = "unrecorded", None
        elif g["gpu"] == 0:
            status, ratio = "CPU run", None
        else:
            status, ratio = "measured", (g["gpu"] / fv if fv else None)
        return {"stage": stage, "model": model, "forecast_gpu_hours": fv,
                "measured_gpu_hours": g["gpu"] if g else None, "measured_cpu_hours": g["cpu"] if g else None,
                "measured_over_forecast": ratio, "status": status}

    rows, total_f, seen = [], 0.0, []
    for f in forecast:
        stage, model = f.get("stage", ""), f.get("model", "")
        if stage == "total" or str(f.get("in_total", "")).lower() == "false":  # RLVR priced on the other engine
            continue
        fv = _num(f.get("gpu_hours"))
        total_f += fv or 0.0
        g = groups.get((stage, model))
        if g is not None:
            seen.append(g)
        rows.append(row(stage, model, fv, g))
    forecast_keys = {(f.get("stage", ""), f.get("model", "")) for f in forecast}
    for key, g in sorted(groups.items()):  # measured jobs the forecast has no row for (e.g. a model added later)
        if key not in forecast_keys and key[0] in ("grlo", "rlvr", "grlo-rlvr", "eval"):
            rows.append(dict(row(*key, None, g), status="not in the forecast"))
    total = None
    if seen:
        gpus = [g["gpu"] for g in seen]
        total = {"gpu": None if None in gpus else sum(gpus), "cpu": sum(g["cpu"] for g in seen)}
    rows.append(row("total", "", total_f, total))
    return [{k: common.fmt(v) for k, v in r.items()} for r in rows]


def cost_body(forecast_path: str | Path, gpu_hours_path: str | Path | None) -> str:
    f_header, _, f_rows = read_csv(forecast_path)
    m_header, m_cols, m_rows = read_csv(gpu_hours_path) if gpu_hours_path else ([], [], None)
    rows = forecast_vs_measured(f_rows, m_rows)
    cols = ["stage", "model", "forecast_gpu_hours", "measured_gpu_hours", "measured_cpu_hours", "measured_over_forecast",
            "status"]
    parts = [smoke_banner(f_header), "<h1>Forecast against what was measured</h1>",
             "<p>Forecast: <code>grlo forecast</code> before the run (token counts x FLOPs / (peak x efficiency)); "
             "measured: Snakemake benchmark TSVs x GPUs from the job's NVML record (<code>grlo gpu-hours</code>). "
             "The forecast's <i>eval</i> stage is compared with the measured <i>generate</i> + <i>score</i> jobs. "
             f"{EMPTY} = not run.</p>",
             html_table(cols, rows, css_id="forecast-vs-measured"),
             "<h2>Forecast: assumptions</h2>", provenance(f_header)]
    if m_rows is not None:
        parts += ["<h1>GPU-hours per stage (measured)</h1>",
                  html_table(m_cols, m_rows, css_id="gpu-hours"), provenance(m_header)]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------------- protocol
def protocol_body(path: str | Path) -> str:
    from markdown_it import MarkdownIt  # optional: markdown_it

    text = read_input(path, "protocol card")
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)  # raw HTML shown as text


# ------------------------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--claims", help="results/claims.csv -> claims.html (and overview.html with table 1)")
    p.add_argument("--tables", nargs="*", default=[], help="results/table1.csv ... table5.csv -> tableN.html")
    p.add_argument("--forecast", help="results/forecast.csv -> cost.html (forecast against measured)")
    p.add_argument("--gpu-hours", help="results/gpu_hours.csv (measured); without it nothing counts as measured")
    p.add_argument("--protocol", help="results/protocol.md (the evaluation protocol card) -> protocol.html")
    p.add_argument("--output-dir", required=True, help="where the pages go (results/report)")


def _table_name(path: str) -> str:
    name = Path(path).name.removesuffix(".csv")
    if name not in TABLE_TITLES:
        raise GrloError(f"not a table file name (table1.csv ... table5.csv): {Path(path).name}", path=path,
                        field="--tables")
    return name


def pages(claims: str | None = None, tables: Sequence[str] = (), forecast: str | None = None,
          gpu_hours: str | None = None, protocol: str | None = None) -> dict[str, str]:
    """{file name: HTML} for the inputs given; overview.html needs the claims and table 1."""
    named = {_table_name(t): t for t in tables}
    out: dict[str, str] = {}
    if claims and "table1" in named:
        out["overview.html"] = page("GRLO reproduction: verdicts and table 1",
                                    section(overview_body(claims, named["table1"]), "overview"))
    if claims:
        out["claims.html"] = page("Claims: verdicts", section(claims_body(claims)))
    for name, path in sorted(named.items()):
        out[f"{name}.html"] = page(TABLE_TITLES[name], section(table_body(path, name)))
    if forecast:
        out["cost.html"] = page("Forecast against measured GPU-hours", section(cost_body(forecast, gpu_hours)))
    elif gpu_hours:
        raise GrloError("--gpu-hours is compared with a forecast: give --forecast too", field="--forecast")
    if protocol:
        out["protocol.html"] = page("Evaluation protocol", section(protocol_body(protocol), "protocol"))
    return out


def run(args: argparse.Namespace) -> int:
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise GrloError("is a file: give a directory", path=str(out), field="--output-dir")
    # render everything first, so that a bad input leaves nothing half-written
    rendered = pages(args.claims, args.tables, args.forecast, args.gpu_hours, args.protocol)
    if not rendered:
        raise GrloError("nothing to render: give --claims, --tables, --forecast or --protocol")
    for name, text in rendered.items():
        write_text(out / name, text)
    print(f"render-html: {len(rendered)} pages -> {out}/ ({', '.join(rendered)})")
    return 0
