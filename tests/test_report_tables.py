"""Table builders on synthetic score files, including missing cells; header block; CLI round trip."""

import json

import pytest

from grlo import config as _config
from grlo.cli import main
from grlo.config import REPO_ROOT
from grlo.errors import GrloError
from grlo.report import tables
from grlo.report.common import load_scores, read_results_csv
from grlo.report.paper_refs import PaperRefs

CFG_FILES = [str(REPO_ROOT / "config" / "config.yaml")]
DOMAINS = {"math500": "math", "aime24": "math", "gpqa_diamond": "science", "humaneval_plus": "code"}


def make_cfg(**over):
    cfg = _config.load(CFG_FILES)
    cfg["evaluation"]["benchmarks"] = list(DOMAINS)
    cfg["evaluation"]["released"] = ["qwen3-4b--nonthinking", "qwen3-4b--thinking"]
    cfg["backbones"]["extra"] = ["qwen3-8b-base"]
    return _config.deep_merge(cfg, over)


def write_score(root, model, bench, value, stderr=1.0, n=10, k=4):
    path = root / "scores" / model / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": bench, "label": bench.upper(), "domain": DOMAINS[bench], "model": model,
                                "metric": "avg@k", "value": value, "stderr": stderr, "n": n, "k": k,
                                "scorer": "math", "samples": str(path.with_suffix(".samples.jsonl")),
                                "n_samples": n * k, "truncated_share": 0.1, "no_answer_share": 0.2}))
    return path


@pytest.fixture
def scores_dir(tmp_path):
    vals = {
        "qwen3-4b-base--base": {"math500": 20.0, "aime24": 0.0, "gpqa_diamond": 30.0, "humaneval_plus": 40.0},
        "qwen3-4b-base--grlo": {"math500": 80.0, "aime24": 10.0, "gpqa_diamond": 45.0, "humaneval_plus": 70.0},
        "qwen3-4b-base--grlo-rlvr": {"math500": 81.0, "aime24": 16.0, "gpqa_diamond": 44.0, "humaneval_plus": 70.0},
        # RLVR misses one benchmark: its cell and the averages depending on it stay empty
        "qwen3-4b-base--rlvr": {"math500": 82.0, "aime24": 12.0, "gpqa_diamond": 40.0},
        "qwen3-4b--nonthinking": {"math500": 84.0, "aime24": 20.0, "gpqa_diamond": 41.0, "humaneval_plus": 75.0},
        "qwen3-8b-base--base": {"math500": 30.0, "aime24": 2.0, "gpqa_diamond": 35.0, "humaneval_plus": 50.0},
        "qwen3-8b-base--grlo": {"math500": 85.0, "aime24": 14.0, "gpqa_diamond": 50.0, "humaneval_plus": 75.0},
    }
    for m, row in vals.items():
        for b, v in row.items():
            write_score(tmp_path, m, b, v)
    return tmp_path / "scores"


def rows_by(table, key):
    return {r[key]: r for r in table["rows"]}


def test_table1_values_macro_averages_and_missing_cells(scores_dir):
    scores = load_scores(directory=scores_dir)
    t = tables.build("table1", make_cfg(), scores, PaperRefs())
    rows = rows_by(t, "model")
    assert list(rows) == ["qwen3-4b-base--base", "qwen3-4b-base--grlo", "qwen3-4b-base--rlvr",
                          "qwen3-4b-base--grlo-rlvr", "qwen3-4b--nonthinking", "qwen3-4b--thinking"]
    g = rows["qwen3-4b-base--grlo"]
    # macro over domains: math = (80 + 10) / 2 = 45; overall = (45 + 45 + 70) / 3
    assert g["avg_math"] == pytest.approx(45.0) and g["avg_science"] == 45.0 and g["avg_code"] == 70.0
    assert g["overall"] == pytest.approx((45 + 45 + 70) / 3)
    assert g["paper_overall"] == 63.1 and "2605.15464" in g["paper_source"]
    assert rows["qwen3-4b-base--base"]["paper_overall"] == 24.1
    r = rows["qwen3-4b-base--rlvr"]
    assert r["humaneval_plus"] is None and r["avg_code"] is None and r["overall"] is None
    assert r["avg_math"] == pytest.approx(47.0)  # complete domains still have their average
    th = rows["qwen3-4b--thinking"]  # no score at all: every cell empty, no paper value invented
    assert all(th[b] is None for b in DOMAINS) and th["overall"] is None and th["paper_overall"] is None
    assert t["columns"][-8:] == ["avg_science", "avg_code", "overall", "overall_stderr", "mean_benchmarks",
                                 "mean_benchmarks_stderr", "paper_overall", "paper_source"]
    cells = [c for c in t["cells"] if c["model"] == "qwen3-4b-base--grlo" and c["benchmark"] == "aime24"]
    assert cells[0]["n"] == 10 and cells[0]["k"] == 4 and cells[0]["stderr"] == 1.0
    assert cells[0]["status"] == "scored" and cells[0]["truncated_share"] == 0.1 and cells[0]["no_answer_share"] == 0.2
    # mean over benchmarks beside the macro mean, each with its standard error (all cells se = 1)
    assert g["mean_benchmarks"] == pytest.approx((80 + 10 + 45 + 70) / 4)
    assert g["mean_benchmarks_stderr"] == pytest.approx(0.5)
    assert g["overall_stderr"] == pytest.approx((2 * (1 / 6) ** 2 + 2 * (1 / 3) ** 2) ** 0.5)
    assert r["overall_stderr"] is None and r["mean_benchmarks"] is None  # incomplete: not a different quantity
    not_run = [c for c in t["cells"] if c["model"] == "qwen3-4b--thinking"]
    assert {c["status"] for c in not_run} == {"not run"} and all(c["value"] is None for c in not_run)


def test_table3_differences_and_qwen_report_column(scores_dir):
    t = tables.build("table3", make_cfg(), load_scores(directory=scores_dir), PaperRefs())
    rows = rows_by(t, "benchmark")
    assert rows["math500"]["diff_vs_nonthinking"] == pytest.approx(80.0 - 84.0)
    assert rows["math500"]["qwen3_report_nonthinking"] == 84.8  # results/paper/qwen3_report.csv
    assert rows["math500"]["qwen3_report_thinking"] == 97.0
    assert rows["math500"]["diff_vs_thinking"] is None  # thinking not run
    assert rows["humaneval_plus"]["qwen3_report_nonthinking"] is None  # Qwen's report has no HumanEval+
    assert rows["overall"]["diff_vs_nonthinking"] == pytest.approx(
        (45 + 45 + 70) / 3 - ((84 + 20) / 2 + 41 + 75) / 3)
    # differences carry a standard error: sqrt(se_a^2 + se_b^2); every cell has se 1 here
    assert rows["math500"]["diff_vs_nonthinking_stderr"] == pytest.approx(2 ** 0.5)
    assert rows["avg_math"]["diff_vs_nonthinking_stderr"] == pytest.approx(2 ** 0.5 / 2 ** 0.5)
    assert rows["overall"]["diff_vs_nonthinking_stderr"] == pytest.approx(
        2 ** 0.5 * (2 * (1 / 6) ** 2 + 2 * (1 / 3) ** 2) ** 0.5)
    assert rows["math500"]["diff_vs_thinking_stderr"] is None  # not run: no error either


def test_table4_gain_and_stderr(scores_dir):
    t = tables.build("table4", make_cfg(), load_scores(directory=scores_dir), PaperRefs())
    rows = rows_by(t, "benchmark")
    assert rows["aime24"]["gain"] == pytest.approx(6.0) and rows["aime24"]["competition_math"] is True
    assert rows["aime24"]["gain_stderr"] == pytest.approx(2 ** 0.5)
    assert rows["gpqa_diamond"]["gain"] == pytest.approx(-1.0) and rows["gpqa_diamond"]["competition_math"] is False
    assert rows["avg_math"]["gain"] == pytest.approx(3.5) and rows["avg_math"]["gain_stderr"] == pytest.approx(1.0)
    # base and RLVR columns are filled from their score files (RLVR has no HumanEval+: empty = not run)
    assert rows["math500"]["base"] == 20.0 and rows["math500"]["rlvr"] == 82.0
    assert rows["humaneval_plus"]["rlvr"] is None


def test_table5_extra_backbones_from_config(scores_dir):
    scores = load_scores(directory=scores_dir)
    t = tables.build("table5", make_cfg(), scores, PaperRefs())
    assert [r["model"] for r in t["rows"]] == ["qwen3-8b-base--base", "qwen3-8b-base--grlo"]
    base, grlo = t["rows"]
    assert grlo["overall_gain_vs_base"] == pytest.approx(grlo["overall"] - base["overall"])
    assert base["overall_gain_vs_base"] is None
    cfg = make_cfg()
    cfg["backbones"]["extra"] = []
    assert tables.build("table5", cfg, scores, PaperRefs())["rows"] == []


def _bench_tsv(root, rule, wc, seconds, gpus, cpu=10.0):
    p = root / rule / f"{wc}.tsv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                 f"{seconds}\t0\t1\t1\t1\t1\t1\t1\t1\t{cpu}\n")
    p.with_name(p.name[:-4] + ".device.json").write_text(json.dumps(
        {"gpu_count": gpus, "gpu_model": "NVIDIA H100 80GB HBM3" if gpus else None}))


def test_table2_public_checkpoint_uses_reported_cost(tmp_path):
    from grlo.accounting import collect_jobs

    _bench_tsv(tmp_path, "train_grlo", "qwen3-4b-base", 5.0 * 3600, 4)  # 20 GPU-h
    cfg = make_cfg()
    cfg["rlvr"]["mode"] = "checkpoint"
    t = tables.build("table2", cfg, {}, PaperRefs(), jobs=collect_jobs(tmp_path), prompts=5000)
    grlo, rlvr = t["rows"]
    assert grlo["gpu_hours"] == pytest.approx(20.0) and grlo["gpus"] == 4
    assert rlvr["prompts"] == 230000 and rlvr["gpu_hours"] == 1536 and rlvr["certainty"] == "inferred"
    assert rlvr["gpus"] == 32 and rlvr["gpu_model"] == "H100"
    assert grlo["data_ratio_vs_rlvr"] == pytest.approx(46.0)
    assert grlo["compute_ratio_vs_rlvr"] == pytest.approx(1536 / 20.0)
    assert (grlo["paper_prompts"], grlo["paper_gpu_hours"], grlo["paper_data_ratio"], grlo["paper_compute_ratio"]) \
        == (5000, 22.7, 46, 68)
    assert len(t["rows"]) == 2  # no GRLO->RLVR job ran: no row


def test_table2_trained_baseline_and_cpu_runs(tmp_path):
    from grlo.accounting import collect_jobs

    _bench_tsv(tmp_path, "train_grlo", "qwen3-4b-base", 60.0, 0, cpu=120.0)
    _bench_tsv(tmp_path, "train_rlvr", "qwen3-4b-base", 30.0, 0, cpu=60.0)
    cfg = make_cfg()
    cfg["rlvr"]["mode"] = "train"
    t = tables.build("table2", cfg, {}, PaperRefs(), jobs=collect_jobs(tmp_path), prompts=40, rlvr_prompts=16)
    grlo, rlvr = t["rows"]
    assert grlo["gpu_hours"] == 0.0 and grlo["cpu_hours"] == pytest.approx(120 / 3600)
    assert grlo["compute_ratio_vs_rlvr"] is None  # 0 GPU-hours: no ratio, never a division by zero
    assert grlo["data_ratio_vs_rlvr"] == pytest.approx(16 / 40) and rlvr["certainty"] == "measured"


def test_cli_table1_writes_header_csv_md_and_cells(scores_dir, tmp_path):
    out = tmp_path / "results" / "table1.csv"
    files = [str(p) for p in sorted(scores_dir.glob("*/*.json"))]
    cfgs = CFG_FILES + [str(REPO_ROOT / "config" / "smoke.yaml")]
    assert main(["table", "--name", "table1", "--config", *cfgs, "--scores", *files, "--output", str(out)]) == 0
    header, rows = read_results_csv(out)
    assert header[0].startswith("mode: smoke") and header[1].startswith("config_hash: ")
    assert header[1].split(": ")[1] == _config.config_hash(_config.load(cfgs))
    assert header[2].startswith("date: ")
    import pandas as pd

    df = pd.read_csv(out, comment="#")
    assert list(df["model"])[:2] == ["qwen3-4b-base--base", "qwen3-4b-base--grlo"]
    md = out.with_suffix(".md").read_text()
    assert "> mode: smoke" in md and "| SmolLM2-135M-Instruct for Qwen3-4B-Base + GRLO |" in md
    _, cells = read_results_csv(tmp_path / "results" / "table1.cells.csv")
    assert {"n", "k", "stderr", "value"} <= set(cells[0])


def test_duplicate_or_broken_score_files_are_errors(tmp_path):
    p = write_score(tmp_path, "m--base", "math500", 1.0)
    with pytest.raises(GrloError, match="two score files"):
        load_scores([p, p])
    p.write_text(json.dumps({"benchmark": "math500", "model": "m--base", "domain": "math"}))
    with pytest.raises(GrloError, match="'value'"):
        load_scores([p])
    assert main(["table", "--name", "table1", "--config", *CFG_FILES, "--scores", str(p),
                 "--output", str(tmp_path / "t.csv")]) == 2


def test_smoke_rows_name_the_stand_in_and_not_run_is_not_zero(scores_dir, tmp_path):
    from grlo.report.common import model_label

    assert model_label("qwen3-4b-base--grlo", "smoke") == "SmolLM2-135M-Instruct for Qwen3-4B-Base + GRLO"
    assert model_label("qwen3-4b--thinking", "smoke") == "SmolLM2-135M-Instruct for Qwen3-4B (thinking)"
    assert model_label("qwen3-4b-base--grlo") == "Qwen3-4B-Base + GRLO"
    cfg = make_cfg(mode="smoke")
    scores = load_scores(directory=scores_dir)
    t = tables.build("table1", cfg, scores, PaperRefs())
    assert rows_by(t, "model")["qwen3-4b-base--base"]["label"] == "SmolLM2-135M-Instruct for Qwen3-4B-Base"
    out = tmp_path / "table1.csv"
    tables.write(t, out, ["mode: smoke"])
    md = out.with_suffix(".md").read_text()
    thinking = next(line for line in md.splitlines() if "(thinking)" in line)
    assert thinking.count("not run") == len(DOMAINS)  # empty cells say so in the Markdown
    aime_base = next(line for line in md.splitlines() if line.startswith("| SmolLM2-135M-Instruct for Qwen3-4B-Base |"))
    assert "| 0 |" in aime_base  # a real 0 stays 0
    cells = out.with_name("table1.cells.csv").read_text()
    assert "truncated_share" in cells and "no_answer_share" in cells


def test_table2_reports_an_adapted_batch_as_deviation(tmp_path):
    from grlo.report.common import training_deviations

    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"batch_sizes": {"adapted": {"train_batch_size": [512, 40],
                                                         "ppo_mini_batch_size": [128, 10]}}}))
    dev = training_deviations(m)
    assert dev == ["batch adapted to the prompt count: train_batch_size 512 -> 40, ppo_mini_batch_size 128 -> 10"]
    assert training_deviations(tmp_path / "missing.json") == [] and training_deviations(None) == []
    t = tables.build("table2", make_cfg(), {}, PaperRefs(), jobs=[], prompts=40, deviations=dev)
    assert t["rows"][0]["deviations"] == dev[0] and any("512 -> 40" in n for n in t["notes"])


def test_table1_cells_and_notes_carry_the_alpacaeval_judge():
    from grlo.report import tables

    judge = {"kind": "openai", "model": "meta-llama/Meta-Llama-3-70B-Instruct", "revision": "c" * 40,
             "paper_judge": False}
    scores = {("m1", "alpacaeval2"): {"value": 31.0, "judge": judge, "label": "AlpacaEval 2 (LC)", "domain": "chat"},
              ("m2", "alpacaeval2"): {"value": None, "status": "not run (no judge)", "judge": {"kind": "none"},
                                      "label": "AlpacaEval 2 (LC)", "domain": "chat"}}
    cells = [tables._cell(m, "alpacaeval2", scores) for m in ("m1", "m2")]
    assert cells[0]["judge"] == judge["model"] and cells[0]["judge_revision"] == "c" * 40 and cells[0]["paper_judge"] is False
    assert cells[1]["status"] == "not run (no judge)"
    notes = tables.judge_notes(cells)
    assert any("Meta-Llama-3-70B-Instruct@" + "c" * 40 in n and "not comparable with the paper's AE2-LC" in n for n in notes)
    assert any("not run (no judge) for m2" in n for n in notes)
