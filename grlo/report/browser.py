"""`grlo browse`: a per-problem browser for one benchmark, as one self-contained HTML page (inline CSS and JS).

Each problem shows every model's extracted answer, score and verdict, the completion length and whether it was cut
at the token limit, plus the tail of the first completion. A search box filters on id, problem, reference and
answers; two model pickers and "only flips" keep the problems that one model solves and the other does not.
The state is in the URL fragment (`#a=MODEL&b=MODEL&flips=1&q=TEXT`), so a link opens the same view.

Inputs are the per-sample outputs of `grlo score` (`scores/<model>/<bench>.samples.jsonl`: id, completions,
extracted, scores, verdicts, and when the generator recorded them completion_tokens and finish_reasons), and
optionally the benchmark file (problem text and reference answer). Fields that a file lacks are shown as unknown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from grlo.errors import GrloError
from grlo.io import read_jsonl, write_text
from grlo.report import common
from grlo.report.html import CSS, esc
from grlo.report.math_html import has_math, to_html

SOLVED_AT = 0.5  # a problem counts as solved by a model when its mean score over the k samples is >= this
TAIL_CHARS = 800  # characters of the first completion kept (its end: where the answer is); pages stay small
ANSWER_CHARS = 400  # an extracted answer longer than this (a program) is cut, with an ellipsis
PROBLEM_CHARS = 2000


def _as_list(v, k: int) -> list:
    if isinstance(v, list):
        return v
    return [v] * k if v is not None else [None] * k


def _cut(row: dict, k: int) -> list:
    """Per sample: True = stopped at the token limit, False = stopped on its own, None = not recorded."""
    if "finish_reasons" in row:
        return [None if r is None else r == "length" for r in _as_list(row["finish_reasons"], k)]
    if "truncated" in row:
        return [None if t is None else bool(t) for t in _as_list(row["truncated"], k)]
    return [None] * k


def _length(row: dict, k: int) -> tuple[list, str]:
    if "completion_tokens" in row:
        return _as_list(row["completion_tokens"], k), "tokens"
    return [len(c) if isinstance(c, str) else None for c in row.get("completions", [])], "chars"


def _clip(text: str) -> str:
    return text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + "…"


def model_entry(row: dict, path: str) -> dict:
    """The browser's view of one sample row of a .samples.jsonl."""
    scores = row.get("scores")
    if not isinstance(scores, list) or not all(isinstance(s, (int, float)) for s in scores):
        raise GrloError("needs 'scores': a list of numbers", path=path, field="scores")
    k = len(scores)
    completions = row.get("completions") or []
    first = completions[0] if completions and isinstance(completions[0], str) else ""
    lengths, unit = _length(row, k)
    mean = sum(scores) / k if k else None
    entry = {
        "extracted": [None if x is None else _clip(str(x)) for x in _as_list(row.get("extracted"), k)],
        "scores": scores, "mean": mean, "solved": None if mean is None else mean >= SOLVED_AT,
        "verdicts": [None if v is None else str(v) for v in _as_list(row.get("verdicts"), k)],
        "length": lengths, "length_unit": unit, "cut": _cut(row, k),
        "tail": ("…" + first[-TAIL_CHARS:]) if len(first) > TAIL_CHARS else first,
    }
    if "no_answer" in row:
        entry["no_answer"] = _as_list(row["no_answer"], k)
    return entry


def model_of(path: str | Path) -> str:
    """scores/<model>/<bench>.samples.jsonl -> <model>."""
    return Path(path).parent.name


def _with_math(p: dict) -> dict:
    """problem_html / answer_html: the LaTeX of the problem and reference as MathML (grlo.report.math_html)."""
    for key in ("problem", "answer"):
        if p.get(key) and has_math(p[key]):
            p[f"{key}_html"] = to_html(p[key])
    ans = p.get("answer") or ""
    if ans and "answer_html" not in p and "\\" in ans and "$" not in ans:  # a bare LaTeX answer (\frac{5}{6})
        p["answer_html"] = to_html(f"${ans}$")
    return p


def build(benchmark: str, samples: Sequence[str], data: str | None = None, mode: str = "paper") -> dict:
    problems: dict[str, dict] = {}
    if data:
        for r in read_jsonl(data):
            if "id" not in r:
                raise GrloError("a problem has no 'id'", path=str(data), field="id")
            text = str(r.get("problem") or r.get("prompt") or "")
            problems[str(r["id"])] = {"id": str(r["id"]), "problem": text[:PROBLEM_CHARS],
                                      "answer": None if r.get("answer") is None else str(r.get("answer")),
                                      "by_model": {}}
    models = []
    for p in samples:
        model = model_of(p)
        if model in models:
            raise GrloError(f"two sample files for model {model}", path=str(p))
        models.append(model)
        for r in read_jsonl(p):
            if "id" not in r:
                raise GrloError("a sample row has no 'id'", path=str(p), field="id")
            pid = str(r["id"])
            prob = problems.setdefault(pid, {"id": pid, "problem": "", "answer": None, "by_model": {}})
            prob["by_model"][model] = model_entry(r, str(p))
    return {"benchmark": benchmark, "label": common.bench_info(benchmark, {})["label"], "models": models,
            "labels": {m: common.model_label(m, mode) for m in models}, "solved_at": SOLVED_AT,
            "problems": [_with_math(p) for p in problems.values() if p["by_model"]]}  # beyond `limit`: not listed


def flips(view: dict, a: str, b: str) -> list[str]:
    """Ids of the problems that exactly one of models a and b solves (both must have scored it)."""
    out = []
    for p in view["problems"]:
        ea, eb = p["by_model"].get(a), p["by_model"].get(b)
        if ea and eb and ea["solved"] is not None and eb["solved"] is not None and ea["solved"] != eb["solved"]:
            out.append(p["id"])
    return out


PAGE_CSS = """
.grlo .controls { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid #d1d5db; }
.grlo .controls input[type=search] { width: 22em; padding: 3px; }
.grlo .ok { background: #d4f4dd; color: #0b5d1e; } .grlo .bad { background: #fbd5d5; color: #8a1111; }
.grlo .unk { background: #e5e7eb; color: #374151; }
.grlo tr.flip > td:first-child { border-left: 4px solid #d97706; }
.grlo .problem { max-width: 28em; white-space: pre-wrap; } .grlo .ans { font-family: monospace; word-break: break-all; }
.grlo .cut { color: #b45309; font-weight: 600; } .grlo details pre { white-space: pre-wrap; max-width: 40em; }
.grlo .small { color: #4b5563; font-size: 0.85em; }
"""

# The page's script: renders the rows from the embedded JSON with textContent (no HTML from the data is parsed).
PAGE_JS = r"""
(function () {
  const V = JSON.parse(document.getElementById("grlo-data").textContent);
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text); return e; };
  const fmt = (x) => (x === null || x === undefined) ? "—" : (Math.round(x * 1000) / 1000).toString();
  for (const sel of [$("model-a"), $("model-b")]) {
    for (const m of V.models) { const o = el("option", "", V.labels[m] + " [" + m + "]"); o.value = m; sel.appendChild(o); }
  }
  function readHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    $("model-a").value = V.models.includes(h.get("a")) ? h.get("a") : (V.models[0] || "");
    $("model-b").value = V.models.includes(h.get("b")) ? h.get("b") : (V.models[1] || V.models[0] || "");
    $("only-flips").checked = h.get("flips") === "1";
    $("search").value = h.get("q") || "";
  }
  function writeHash() {
    const h = new URLSearchParams({a: $("model-a").value, b: $("model-b").value,
      flips: $("only-flips").checked ? "1" : "0", q: $("search").value});
    try { history.replaceState(null, "", "#" + h.toString()); } catch (err) { /* data: URL (report.html item) */ }
  }
  function isFlip(p, a, b) {
    const ea = p.by_model[a], eb = p.by_model[b];
    return !!(ea && eb && ea.solved !== null && eb.solved !== null && ea.solved !== eb.solved);
  }
  function haystack(p) {
    let s = [p.id, p.problem, p.answer || ""];
    for (const m of V.models) { const e = p.by_model[m]; if (e) s = s.concat(e.extracted.map(x => x || "")); }
    return s.join("\n").toLowerCase();
  }
  function mathCell(cls, text, rendered) {  // rendered: escaped text + MathML, made by grlo.report.math_html
    const td = el("td", cls, rendered ? "" : text);
    if (rendered) { td.innerHTML = rendered; td.title = text; }
    return td;
  }
  function modelCell(e) {
    const td = el("td");
    if (!e) { td.appendChild(el("span", "small", "not scored")); return td; }
    td.className = e.solved === null ? "unk" : (e.solved ? "ok" : "bad");
    const ans = e.extracted.length === 1 ? e.extracted[0] : e.extracted.map(x => x === null ? "∅" : x).join(" | ");
    if (ans === null || ans === undefined) td.appendChild(el("div", "small", "no extracted answer"));
    else td.appendChild(el("div", "ans", ans));
    const cut = e.cut.filter(c => c === true).length, known = e.cut.filter(c => c !== null).length;
    const len = e.length.filter(x => x !== null);
    let info = "score " + fmt(e.mean) + (e.scores.length > 1 ? " (k=" + e.scores.length + ")" : "") + " · " +
      (len.length ? len.join("/") + " " + e.length_unit : "length unknown");
    td.appendChild(el("div", "small", info));
    const none = (e.no_answer || []).filter(x => x === true).length;
    if (none) td.appendChild(el("div", "cut", "no answer found (" + none + "/" + e.no_answer.length + ")"));
    const verdicts = e.verdicts.filter(v => v !== null);
    if (verdicts.length) td.appendChild(el("div", "small", "verdict: " + verdicts.join(" | ")));
    td.appendChild(el("div", cut ? "cut" : "small",
      known === 0 ? "cut: not recorded" : (cut ? "cut at the token limit (" + cut + "/" + known + ")" : "finished")));
    if (e.tail) { const d = el("details"); d.appendChild(el("summary", "small", "completion (end)"));
      d.appendChild(el("pre", "", e.tail)); td.appendChild(d); }
    td.dataset.solved = String(e.solved);
    return td;
  }
  function render() {
    const a = $("model-a").value, b = $("model-b").value, only = $("only-flips").checked;
    const q = $("search").value.trim().toLowerCase();
    const body = $("rows"); body.textContent = "";
    // the flip filter compares A and B: only their answers are shown then (every model otherwise)
    const cols = only && a !== b ? [a, b] : V.models;
    const head = $("head");
    for (const th of Array.from(head.querySelectorAll("th[data-model]"))) th.remove();
    for (const m of cols) {
      const th = el("th", "", (cols === V.models ? "" : (m === a ? "A: " : "B: ")) + V.labels[m] + " [" + m + "]");
      th.dataset.model = m; head.appendChild(th);
    }
    let shown = 0, nflip = 0;
    for (const p of V.problems) {
      const flip = a !== b && isFlip(p, a, b);
      if (flip) nflip++;
      if (only && !flip) continue;
      if (q && !haystack(p).includes(q)) continue;
      shown++;
      const tr = el("tr", flip ? "flip" : ""); tr.dataset.id = p.id; tr.dataset.flip = String(flip);
      const first = el("td"); first.appendChild(el("div", "ans", p.id));
      if (flip) first.appendChild(el("div", "cut", "flips: " + (p.by_model[a].solved ? "A solves, B not" : "B solves, A not")));
      tr.appendChild(first);
      tr.appendChild(mathCell("problem", p.problem, p.problem_html));
      tr.appendChild(mathCell("ans", p.answer === null ? "—" : p.answer, p.answer_html));
      for (const m of cols) tr.appendChild(modelCell(p.by_model[m]));
      body.appendChild(tr);
    }
    $("count").textContent = shown + " of " + V.problems.length + " problems shown; " + nflip +
      " flip between A and B" + (a === b ? " (pick two different models)" : "");
    writeHash();
  }
  readHash();
  for (const id of ["model-a", "model-b", "only-flips"]) $(id).addEventListener("change", render);
  $("search").addEventListener("input", render);
  window.addEventListener("hashchange", () => { readHash(); render(); });
  render();
})();
"""


def render(view: dict, header: Sequence[str] = ()) -> str:
    data = json.dumps(view, ensure_ascii=False).replace("</", "<\\/").replace("\u2028", "\\u2028")
    title = f"Per-problem browser: {view['label']}"
    smoke = any(h.startswith("mode: smoke") for h in header)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
        f"<style>{CSS}{PAGE_CSS}</style>\n</head>\n<body>\n<section class=\"grlo\">\n<h1>{esc(title)}</h1>\n"
        + ('<p class="smoke">Smoke run: tiny stand-in models and data on CPU; nothing here is comparable to the '
           "paper.</p>\n" if smoke else "")
        + '<div class="prov">' + "".join(f"<div>{esc(h)}</div>" for h in header) + "</div>\n"
        + f'<p class="small">Solved = mean score over the k samples &gt;= {view["solved_at"]:g}. Length: tokens '
          "when the generator recorded them, else characters. Cut = the completion stopped at the token limit "
          "(finish reason 'length').</p>\n"
        + '<div class="controls"><input type="search" id="search" placeholder="search id, problem, answers"> '
          '<label>A <select id="model-a"></select></label> <label>B <select id="model-b"></select></label> '
          '<label><input type="checkbox" id="only-flips"> only answers that flip between A and B</label> '
          '<span id="count" class="small"></span></div>\n'
        + '<div class="scroll"><table id="problems"><thead><tr id="head"><th>id</th><th>problem</th>'
          "<th>reference</th></tr></thead><tbody id=\"rows\"></tbody></table></div>\n"
        + '<noscript>This page needs JavaScript to list the problems.</noscript>\n'
        + f'<script type="application/json" id="grlo-data">{data}</script>\n<script>{PAGE_JS}</script>\n'
        + "</section>\n</body>\n</html>\n")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", required=True, help="benchmark name (registry)")
    p.add_argument("--samples", nargs="+", required=True,
                   help="scores/<model>/<bench>.samples.jsonl, one per model (the model is the directory name)")
    p.add_argument("--data", help="data/benchmarks/<bench>.jsonl: problem text and reference answer")
    p.add_argument("--config", nargs="*", default=[], help="config files: the page's header block (mode, hash)")
    p.add_argument("--output", required=True, help="results/browser/<bench>.html")


def run(args: argparse.Namespace) -> int:
    if not str(args.output).endswith(".html"):
        raise GrloError("output must end in .html", path=str(args.output), field="--output")
    cfg = common.load_config(args.config) if args.config else None
    view = build(args.benchmark, args.samples, args.data, mode=cfg.get("mode", "paper") if cfg else "paper")
    header = common.header_lines(cfg) if cfg else []
    write_text(args.output, render(view, header))
    models = view["models"]
    n_flip = len(flips(view, models[0], models[1])) if len(models) > 1 else 0
    print(f"browse {args.benchmark}: {len(view['problems'])} problems x {len(models)} models -> {args.output}"
          + (f" ({n_flip} flip between {models[0]} and {models[1]})" if len(models) > 1 else ""))
    return 0
