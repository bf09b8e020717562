"""`grlo lmeval-fewshot`: the base model's few-shot GSM8K and MATH with lm-eval, beside the Qwen3 report.

    grlo lmeval-fewshot --config CFG... --model-dir models/qwen3-4b-base --output results/lmeval/qwen3-4b-base.json
                        [--csv results/lmeval/qwen3-4b-base.csv] [--device-record PATH]

Qwen3 Technical Report, Table 7 (Qwen3-4B-Base): GSM8K 87.79 (4-shot CoT), MATH 54.10 (4-shot CoT). Our runs:
- GSM8K: lm-eval's `gsm8k_cot` task with num_fewshot=4 (the first 4 of its 8 Wei et al. chain-of-thought
  exemplars), metric exact_match with its "strict-match" filter ("The answer is N.") and "flexible-extract".
- MATH: lm-eval's `minerva_math` group (4-shot Minerva prompt, all 5,000 MATH test problems), metric math_verify.
These are NOT Qwen's internal prompts, so the comparison shows the weights and harness are sound, not that the
numbers must coincide: a gap of a few points is expected; a gap of tens of points means something is broken.
Smoke mode runs the same task definitions (included by absolute path, so prompts, few-shot exemplars, filters and
metrics are lm-eval's) on our fixtures through `--include_path`-style local tasks with dataset_path json.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import yaml

from grlo import config as config_mod
from grlo import lock
from grlo.accounting import record_device
from grlo.data import FIXTURES
from grlo.errors import GrloError
from grlo.io import library_versions, write_json, write_text

log = logging.getLogger(__name__)

QWEN3_REPORT = {  # Qwen3 Technical Report (arXiv 2505.09388) Table 7, Qwen3-4B-Base
    "gsm8k": {"value": 87.79, "shots": "4-shot CoT"},
    "math": {"value": 54.10, "shots": "4-shot CoT"},
}
DEFAULTS = {
    "tasks": {"gsm8k": {"task": "gsm8k_cot", "num_fewshot": 4, "metric": "exact_match,strict-match"},
              "math": {"task": "minerva_math", "num_fewshot": 4, "metric": "math_verify,none"}},
    "limit": None, "batch_size": "auto", "max_gen_toks": None, "backend": "vllm",
}


# lm-eval's own datasets for these tasks (its gsm8k-cot.yaml / minerva_math_*.yaml dataset_path), loaded at a pinned
# commit in paper mode (lm-eval itself reads `main`): the registry pin here, else the lock file (grlo/lock.py,
# section datasets). openai/gsm8k: the commit pinned by several third-party public scripts (code search), as the
# gsm8k benchmark in grlo/registry/benchmarks.yaml.
LMEVAL_DATASETS = {
    "gsm8k": {"repo": "openai/gsm8k", "revision": "cc7b047b6e5bb11b4f1af84efc572db110a51b3c"},
    "math": {"repo": "EleutherAI/hendrycks_math", "revision": None},
}
MINERVA_SUBTASKS = ("algebra", "counting_and_prob", "geometry", "intermediate_algebra", "num_theory", "prealgebra",
                    "precalc")


def add_arguments(p) -> None:
    p.add_argument("--config", nargs="*", default=[])
    p.add_argument("--model-dir", required=True, help="HF model directory (base model)")
    p.add_argument("--output", required=True, help="summary JSON")
    p.add_argument("--csv", help="the small comparison table (default: OUTPUT with .csv)")
    p.add_argument("--device-record", help="write the device record JSON here (grlo.accounting.record_device)")


def settings(cfg: dict) -> dict:
    s = {**DEFAULTS, **((cfg.get("evaluation") or {}).get("lmeval") or {})}
    s["tasks"] = {**DEFAULTS["tasks"], **(s.get("tasks") or {})}
    return s


def _lm_eval_task_dir(name: str) -> Path:
    import lm_eval  # heavy: lm_eval

    return Path(lm_eval.__file__).parent / "tasks" / name


def write_smoke_tasks(dest: Path) -> dict:
    """Local tasks including lm-eval's own gsm8k-cot / minerva_math_algebra definitions, on our fixtures."""
    dest.mkdir(parents=True, exist_ok=True)
    gsm = FIXTURES / "gsm8k_smoke.jsonl"
    math_rows = [json.loads(l) for l in (FIXTURES / "math_smoke.jsonl").read_text().splitlines() if l.strip()]
    math_file = dest / "math_smoke_minerva.jsonl"
    # Minerva's process_docs reads the gold from the solution's last \boxed{}.
    math_file.write_text("".join(json.dumps({"problem": r["problem"], "solution": f"$\\boxed{{{r['answer']}}}$",
                                             "level": "smoke", "type": "smoke"}) + "\n" for r in math_rows))
    common = {"dataset_path": "json", "dataset_name": None, "test_split": "test", "training_split": None,
              "validation_split": None}
    tasks = {
        "grlo_smoke_gsm8k_cot": {"include": str(_lm_eval_task_dir("gsm8k") / "gsm8k-cot.yaml"),
                                 "dataset_kwargs": {"data_files": {"test": str(gsm)}}, **common},
        "grlo_smoke_minerva_math": {"include": str(_lm_eval_task_dir("minerva_math") / "minerva_math_algebra.yaml"),
                                    "dataset_kwargs": {"data_files": {"test": str(math_file)}}, **common},
    }
    for name, body in tasks.items():
        body = {"task": name, **body, "tag": []}
        (dest / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return {"gsm8k": "grlo_smoke_gsm8k_cot", "math": "grlo_smoke_minerva_math"}


def write_pinned_tasks(dest: Path, revisions: dict) -> dict:
    """Paper-mode tasks: lm-eval's own gsm8k-cot and minerva_math definitions (included by absolute path: prompts,
    exemplars, filters and metrics are lm-eval's), each loading its dataset at the pinned commit (dataset_kwargs
    revision); minerva_math's group with lm-eval's own aggregation over our pinned subtasks."""
    dest.mkdir(parents=True, exist_ok=True)
    bodies = {"grlo_gsm8k_cot": {"include": str(_lm_eval_task_dir("gsm8k") / "gsm8k-cot.yaml"),
                                 "dataset_kwargs": {"revision": revisions["gsm8k"]}}}
    for sub in MINERVA_SUBTASKS:
        bodies[f"grlo_minerva_math_{sub}"] = {"include": str(_lm_eval_task_dir("minerva_math") / f"minerva_math_{sub}.yaml"),
                                              "dataset_kwargs": {"revision": revisions["math"]}}
    for name, body in bodies.items():
        (dest / f"{name}.yaml").write_text(yaml.safe_dump({"task": name, **body, "tag": []}, sort_keys=False))
    group = yaml.safe_load((_lm_eval_task_dir("benchmarks") / "minerva_math.yaml").read_text())
    group.update({"group": "grlo_minerva_math", "task": [f"grlo_minerva_math_{s}" for s in MINERVA_SUBTASKS]})
    (dest / "grlo_minerva_math.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    return {"gsm8k": "grlo_gsm8k_cot", "math": "grlo_minerva_math"}


def dataset_revisions(cfg: dict) -> dict:
    """The commit of each lm-eval dataset: the pin above, else the lock file, else resolved now and recorded (refused
    with one line when lock.frozen)."""
    out = {}
    for key, src in LMEVAL_DATASETS.items():
        full = {"kind": "hub_dataset", **src}
        rev = lock.revision(cfg, "datasets", f"lmeval-{key}", full) if lock.lock_path(cfg) else src["revision"]
        if rev is None:
            from huggingface_hub import HfApi  # optional: huggingface_hub

            rev = HfApi().dataset_info(src["repo"]).sha
            lock.record(cfg, "datasets", f"lmeval-{key}", full, rev, {})
        out[key] = rev
    return out


def _metric(results: dict, task: str, metric: str) -> tuple[float | None, float | None]:
    r = results.get(task) or {}
    key, _, filt = metric.partition(",")
    candidates = [metric] + [k for k in r if k.startswith(key + ",") and not k.endswith("_stderr")]
    for k in candidates:
        if k in r and isinstance(r[k], (int, float)):
            se = r.get(k.replace(",", "_stderr,", 1))
            return 100.0 * float(r[k]), (100.0 * float(se) if isinstance(se, (int, float)) else None)
    return None, None


def run(args) -> int:
    cfg = config_mod.load(args.config) if args.config else {"mode": "paper"}
    s = settings(cfg)
    mode = cfg.get("mode", "paper")
    if not Path(args.model_dir).exists():
        raise GrloError("model directory not found", path=args.model_dir)
    if args.device_record:
        record_device(args.device_record, (cfg.get("resources") or {}).get("gpus_eval", 0))
    import lm_eval  # heavy: lm_eval
    from lm_eval.tasks import TaskManager  # heavy: lm_eval

    with tempfile.TemporaryDirectory(prefix="grlo-lmeval-") as tmp:
        if mode == "smoke":
            names = write_smoke_tasks(Path(tmp))
            tm = TaskManager(include_path=tmp)
            backend = "hf"
        elif all(s["tasks"][k]["task"] == DEFAULTS["tasks"][k]["task"] for k in DEFAULTS["tasks"]):
            names = write_pinned_tasks(Path(tmp), dataset_revisions(cfg))
            tm = TaskManager(include_path=tmp)
            backend = s["backend"]
        else:  # other lm-eval tasks chosen in the config: lm-eval's own definitions and dataset revisions
            names = {k: v["task"] for k, v in s["tasks"].items()}
            tm = TaskManager()
            backend = s["backend"]
        dtype = (cfg.get("generation") or {}).get("dtype", "bfloat16")
        model_args = {"pretrained": args.model_dir, "dtype": dtype}
        if backend == "vllm":
            model_args["gpu_memory_utilization"] = ((cfg.get("generation") or {}).get("vllm") or {}).get(
                "gpu_memory_utilization", 0.9)
        gen_kwargs = {"max_gen_toks": s["max_gen_toks"]} if s["max_gen_toks"] else None
        import torch  # heavy: torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        rows = []
        raw = {}
        # One lm-eval call (one model load) per distinct shot count.
        by_shots: dict[int, list[str]] = {}
        for key in names:
            by_shots.setdefault(int(s["tasks"][key]["num_fewshot"]), []).append(key)
        for shots, keys in by_shots.items():
            res = lm_eval.simple_evaluate(model=backend, model_args=model_args, tasks=[names[k] for k in keys],
                                          num_fewshot=shots, limit=s["limit"],
                                          batch_size=s["batch_size"], task_manager=tm, gen_kwargs=gen_kwargs,
                                          device=device, log_samples=False, random_seed=int(cfg.get("seed", 0)),
                                          apply_chat_template=False)
            results = res["results"]
            for key in keys:
                task, spec = names[key], s["tasks"][key]
                value, stderr = _metric(results, task, spec["metric"])
                n = (res.get("n-samples") or {}).get(task, {}).get("effective")
                raw[key] = results.get(task)
                rows.append({"benchmark": key, "task": task, "num_fewshot": shots, "metric": spec["metric"],
                             "value": value, "stderr": stderr, "n": n, "limit": s["limit"],
                             "qwen3_report": QWEN3_REPORT[key]["value"],
                             "qwen3_report_shots": QWEN3_REPORT[key]["shots"]})
    summary = {
        "model_dir": args.model_dir, "mode": mode, "backend": backend, "rows": rows,
        "reference": {"source": "Qwen3 Technical Report (arXiv 2505.09388), Table 7, Qwen3-4B-Base",
                      "values": QWEN3_REPORT},
        "note": "lm-eval's public prompts, not Qwen's internal ones: a sanity check of weights and harness."
                + (" Smoke mode: tiny model on our fixtures; numbers are not comparable." if mode == "smoke" else ""),
        "versions": library_versions(), "raw_results": raw,
    }
    write_json(args.output, summary)
    csv_path = args.csv or (args.output[:-5] if args.output.endswith(".json") else args.output) + ".csv"
    lines = ["benchmark,task,num_fewshot,value,stderr,n,qwen3_report,qwen3_report_shots"]
    for r in rows:
        fmt = lambda v: "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
        lines.append(",".join([r["benchmark"], r["task"], str(r["num_fewshot"]), fmt(r["value"]), fmt(r["stderr"]),
                               fmt(r["n"]), f"{r['qwen3_report']:.2f}", r["qwen3_report_shots"]]))
    write_text(csv_path, "\n".join(lines) + "\n")
    log.info("lm-eval few-shot: %s", ", ".join(f"{r['benchmark']}={r['value']}" for r in rows))
    return 0
