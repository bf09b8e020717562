"""Mutation testing of the core rules, as a benchmark (not a gate): how many deliberate small bugs the tests catch.

Tool: mutmut 3 (pinned in the dev extra). Chosen over cosmic-ray and pytest-gremlins because it is maintained, needs
no session database or worker setup, and runs each mutant in a forked child of one warm pytest process with only the
tests that reach the mutated function (it records that map once per module): our test modules import torch and
transformers, so a fresh pytest per mutant (cosmic-ray's model) would cost seconds of imports per mutant, hours on a
2-core machine. pytest-gremlins is younger and less used.

Each module is run on its own, in a scratch copy of the repository (`--workdir`, default /tmp/grlo-mutation/<name>),
with only the test files that cover it, so a run is fast and the modules do not share mutmut state. Mutants that
the tests cannot tell apart from the original because they do not change behaviour are listed in EQUIVALENT with a
reason; the score is killed / (mutants - equivalent). Timeouts count as killed (mutmut's rule).

    nice -n 19 .venv/bin/python benchmarks/mutation.py [--only NAME ...] [--jobs 2] [--workdir DIR]
        [--output benchmarks/results/mutation.json] [--rescore]

--rescore recounts the modules of --output from their workdirs with the current EQUIVALENT list, without a run.
Limits: mutmut 3.8.1's worker pool fails on a test that starts subprocesses, so such tests are left out of a
module's run (DESELECT) and grlo/train/distributed.py, whose tests start gloo processes, is not in the set. On a
shared 2-core machine math-verify's 5 s parse limit can be exceeded (an equivalence test then fails the clean run).

Writes per module: mutants, killed, survived (each with its diff), equivalent, score; and the machine, its load and
the command. `make mutation` runs it. Nothing outside --workdir and --output is written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (files to mutate, the test files that cover them). Test files are chosen per module (those that import it
# or drive it end to end), so each run stays a few minutes.
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "eval_metrics": (["grlo/eval/metrics.py"], ["tests/test_eval_metrics.py", "tests/test_metrics_edges.py"]),
    "report_claims": (["grlo/report/claims.py"], ["tests/test_report_claims.py", "tests/test_claims_rules.py"]),
    "train_advantages_losses": (["grlo/train/advantages.py", "grlo/train/losses.py"],
                                ["tests/test_ppo_math.py", "tests/test_ppo_math_edges.py"]),
    "rewards_math": (["grlo/rewards/math.py"], ["tests/test_math_boxes.py", "tests/test_rewards_general_reasoner.py"]),
    "eval_scorers_math_choice": (["grlo/eval/scorers/math.py", "grlo/eval/scorers/choice.py"],
                                 ["tests/test_math_boxes.py", "tests/test_eval_scorers.py", "tests/test_eval_choice_rules.py",
                                  "tests/test_eval_score_math.py", "tests/test_eval_parity.py"]),
    # grlo/train/distributed.py (global_whiten, reduce_row) is not in the set: its tests start real gloo processes,
    # and mutmut 3.8.1's worker pool fails on a test that starts subprocesses (KeyError in wait_for_result). A missing
    # all-reduce is caught by tests/test_whiten_ranks.py (checked by putting the bug back by hand).
    # the resume fingerprint: computed and checked in grlo/train/checkpoint.py, fed by PPOTrainer (grlo/train/ppo.py)
    "train_resume_fingerprint": (["grlo/train/checkpoint.py"], ["tests/test_resume_fingerprint.py"]),
    # (tests/verl_env/test_verl_config.py composes them with verl's own config: it runs in .venv-verl, not here)
    "verl_overrides": (["grlo/train/verl/overrides.py"],
                       ["tests/test_verl_overrides_rules.py", "tests/test_verl_overrides_mutants.py",
                        "tests/test_verl_launch.py"]),
}

# Slow tests left out of a module's run: they do not reach the mutated functions (they would only slow the
# recording of which tests reach which function), or they start processes, which mutmut cannot run.
DESELECT: dict[str, list[str]] = {
    # starts `grlo train-grlo` in a subprocess, which mutmut's worker pool cannot run (see the note in MODULES)
    "verl_overrides": ["tests/test_verl_launch.py::test_dry_run_stdout_is_the_command_and_its_comments",
                       # asserts "verl" is absent from the native command, whose paths hold the workdir's name
                       "tests/test_verl_launch.py::test_native_engine_dry_run_is_the_native_launch"],
    "eval_scorers_math_choice": ["tests/test_eval_scorers.py::test_ifeval_with_lm_eval_implementation",
                                 "tests/test_eval_scorers.py::test_alpacaeval_reward_model_judge"],
}

# Only these functions of a module are mutated when listed (a module with other roles beside the core rule).
ONLY_FUNCTIONS: dict[str, list[str]] = {
    # the trainer's checkpoint I/O (model/optimizer state, RNG, litter) is covered by the resume tests, not here
    "train_resume_fingerprint": ["fingerprint", "check_fingerprint", "input_id", "_file_id", "_flatten",
                                 "code_version"],
    # the verdict rules and tolerances; build (the claim rows, ~600 mutants, mostly of texts: an hour on 2 cores) and
    # the command line are left out (tests/test_report_claims.py and test_claims_rules.py cover the rows)
    "report_claims": ["within", "verdict", "_tol_text", "_tol"],
}

# Mutants that behave exactly as the original on every input (mutant name -> why). Reviewed by hand.
_TIMEOUT_ONLY = ("changes only math-verify's time limit (signal-based, main thread only), not a verdict: every "
                 "answer the tests or a benchmark give parses and verifies in well under the 5 s limit")
_2D = ("(batch, response_length) tensors have two dimensions, so dimension -1 is dimension 1 (and -2 is 0; squeezing "
       "the size-1 column of nonzero()'s (k, 1) output either way, or not at all, indexes the same rows)")
EQUIVALENT: dict[str, str] = {
    "grlo.train.advantages.x_explained_variance__mutmut_11": 'float("NAN") is the same NaN',
    "grlo.train.checkpoint.x_code_version__mutmut_7":
        "another separator between a module's name and its source in the code hash: the hash is only compared with "
        "hashes the same code computes",
    "grlo.train.verl.overrides.x_build_overrides__mutmut_66":
        "`or` instead of `and`: no CONFIG_KEY value is None and no CONFIG_KEY key is among the keys produced "
        "before the loop, so both conditions select the same keys",
    "grlo.eval.scorers.choice.x_extract_letter__mutmut_34":
        "also stripping 'X' from a boxed letter: X is never an option (grlo.eval.templates.LETTERS is A-J), so the "
        "letter is rejected either way",
    "grlo.eval.scorers.choice.x_extract_letter__mutmut_5":
        "an empty text as 'XXXX' instead of '': neither holds an answer pattern nor a box",
    "grlo.train.advantages.x_token_level_rewards__mutmut_8": _2D,
    "grlo.train.advantages.x_token_level_rewards__mutmut_15": _2D,
    "grlo.train.advantages.x_token_level_rewards__mutmut_16": _2D,
    "grlo.train.advantages.x_token_level_rewards__mutmut_20": _2D,
    "grlo.train.advantages.x_token_level_rewards__mutmut_28": _2D,
    "grlo.train.advantages.x_token_level_rewards__mutmut_30": _2D,
    "grlo.train.losses.x_policy_loss__mutmut_58":
        "`<=` instead of `<` at advantage 0: every surrogate (-A r, -A clip(r), -A c) is 0 there, so the dual and "
        "the plain clipped loss agree",
    "grlo.train.advantages.x_masked_mean__mutmut_2": "Tensor.sum(dim=None) sums over every element, as .sum() does",
    "grlo.train.advantages.x_masked_sum__mutmut_1": "as x_masked_mean__mutmut_2",
    "grlo.train.losses.x_agg_loss__mutmut_11":
        "n_tokens (a token count, integer-valued) as a tensor of its own dtype: dividing the float loss by it gives "
        "the same float",
    "grlo.train.losses.x_agg_loss__mutmut_13": "as x_agg_loss__mutmut_11",
    "grlo.train.losses.x_agg_loss__mutmut_24": _2D,
    "grlo.train.losses.x_agg_loss__mutmut_33": _2D,
    "grlo.train.losses.x_agg_loss__mutmut_37": _2D,
    "grlo.train.losses.x_agg_loss__mutmut_45": _2D,
    "grlo.train.losses.x_agg_loss__mutmut_51": _2D,
    "grlo.train.losses.x_agg_loss__mutmut_49":
        "the row indicator stays boolean (.to(None) is a no-op); masked_mean multiplies it into the float sequence "
        "losses and sums it as a count: the same mean",
    "grlo.train.losses.x_policy_loss__mutmut_65": "as x_value_loss__mutmut_42 (boolean kept, same fraction)",
    "grlo.train.losses.x_policy_loss__mutmut_75": "as x_value_loss__mutmut_42 (boolean kept, same fraction)",
    "grlo.train.losses.x_policy_loss__mutmut_81":
        "`<=` instead of `<` at advantage 0: clipped and the dual bound are both 0 there, so the `gt` is False anyway",
    "grlo.train.losses.x_value_loss__mutmut_42":
        "clipfrac's comparison stays boolean (.to(None) is a no-op) and masked_mean multiplies it by the float mask: "
        "the same fraction",
    "grlo.report.claims.x__tol__mutmut_4":
        "default None instead of {} for a missing report.tolerance: `or {}` turns both into {}",
    "grlo.report.claims.x__tol__mutmut_7": "no default for a missing report.tolerance: config.get returns None, "
                                             "which `or {}` turns into {}",
    "grlo.report.claims.x_verdict__mutmut_2": "another default mode string: mode is only compared with 'smoke'",
    "grlo.report.claims.x_verdict__mutmut_3": "as mutmut_2",
    "grlo.rewards.math.x_extract_boxed__mutmut_4":
        "start value -2 instead of -1: rfind returns >= -1, so the first marker always replaces it and `best < 0` "
        "still means no box",
    "grlo.rewards.math.x_extract_boxed__mutmut_5":
        "marker_len's start value is never read: it is set with the first marker found, and without one the "
        "function returns before using it",
    "grlo.rewards.math.x_extract_boxed__mutmut_6": "as mutmut_5 (start value 1 instead of 0)",
    "grlo.rewards.math.x_extract_boxed__mutmut_10":
        "`>=` instead of `>`: \\boxed and \\fbox cannot start at the same index, so ties only occur at -1 "
        "(neither found), which returns None either way",
    "grlo.rewards.math.x_is_equivalent__mutmut_6": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_9": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_14": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_27": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_30": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_31": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_32": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_33": _TIMEOUT_ONLY,
    "grlo.rewards.math.x_is_equivalent__mutmut_18":
        "`and` instead of `or` when one side parses: verify() of a parsed expression against an empty parse is "
        "False, as is the text comparison of a parseable and an unparseable string",
    "grlo.eval.metrics.x_pass_at_k__mutmut_11":
        "`n + c < k` instead of `n - c < k`: where they differ (n - c < k <= n + c) the product runs over "
        "i = n-c+1..n, which holds i = k, whose factor 1 - k/k is exactly 0: the same 1.0",
    "grlo.train.verl.overrides.x_fmt__mutmut_19":
        "another key separator in json.dumps: it is used only for a dict inside a list or tuple, and no override value is one (fmt writes a dict itself as {k:v}; the lists are trainer.logger's names and the optimizers' betas)",
    "grlo.train.verl.overrides.x_build_overrides__mutmut_69":
        "`or` instead of `and` in the CONFIG_KEY loop: no CONFIG_KEY value is None, and the only keys both produced and "
        "mapped (data.train_batch_size, actor ppo_mini_batch_size) are set from the batch plan right after the loop",
    "grlo.eval.scorers.math.x_n_boxes__mutmut_4": "another default text for None: it holds no box marker either",
    "grlo.eval.scorers.math.x_verify_completion__mutmut_32":
        "p[+1] instead of p[-1]: math-verify's parse returns [expression, matched text], two items, so both are the text",
    "grlo.train.verl.overrides.x_build_overrides__mutmut_117":
        "another default for a key without a deviation reason: 'XXXX' does not start with 'declared only' either",
    "grlo.train.verl.overrides.x_replace__mutmut_4":
        "lstrip('XX+XX') strips the characters X and +: no verl override key starts with an upper-case X",
    "grlo.train.verl.overrides.x_replace__mutmut_10": "as x_replace__mutmut_4",
    "grlo.train.verl.overrides.x_replace__mutmut_15": "as x_replace__mutmut_4",
    "grlo.train.verl.overrides.x_same__mutmut_13":
        "abs_tol=0.0 dropped: math.isclose's default abs_tol is 0.0",
    "grlo.train.verl.overrides.x_style_weights__mutmut_14":
        "max_response_length 2 instead of 1 for the StyleMix built here: style_weights returns only its four weights, never that length (the reward manager gets it from +reward_model.reward_kwargs.max_response_length)",
    "grlo.train.verl.overrides.x_style_weights__mutmut_8":
        "default None instead of {} for a missing reward.style_mix: StyleMix.from_config reads `sec or {}`, so both give the default weights",
}

# The same tree a user has; the tests read config/ and workflow/ beside grlo/.
COPY = ["grlo", "config", "workflow", "Snakefile", "docs", "results", "README.md", "envs", "docker", "Dockerfile",
        "benchmarks"]


def pyproject(files: list[str], tests: list[str], deselect: list[str]) -> str:
    def arr(xs):
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"

    return f"""[tool.mutmut]
source_paths = ["grlo"]
only_mutate = {arr(files)}
also_copy = {arr([p for p in COPY if p != "grlo"])}
pytest_add_cli_args = {arr(["-p", "no:cacheprovider", "-x", "-q", "-W", "ignore"] + [a for d in deselect for a in ("--deselect", d)])}
pytest_add_cli_args_test_selection = {arr(tests)}
timeout_multiplier = 10.0

[tool.pytest.ini_options]
testpaths = ["tests"]
markers = ["slow: long-running tests", "integration: runs the smoke DAG"]
addopts = "-m 'not slow and not integration'"
"""


def prepare(work: Path, files: list[str], tests: list[str], deselect: list[str]) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    for p in COPY:
        src = ROOT / p
        if src.is_dir():
            shutil.copytree(src, work / p, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, work / p)
    (work / "tests").mkdir()
    for t in (ROOT / "tests").glob("*.py"):  # every test module: tests import helpers from each other
        shutil.copy2(t, work / "tests" / t.name)
    (work / "pyproject.toml").write_text(pyproject(files, tests, deselect))


def mutmut_bin() -> str:
    exe = Path(sys.executable).parent / "mutmut"
    return str(exe) if exe.exists() else "mutmut"


def read_results(work: Path) -> dict[str, str]:
    """mutant name -> status, from mutmut's own meta files."""
    from mutmut.stats import status_by_exit_code

    out = {}
    for meta in (work / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            out[name] = status_by_exit_code[code]
    return out


def diffs(work: Path, names: list[str], files: list[str]) -> dict[str, str]:
    """mutant name -> its diff against the original function (mutmut's own `show`, without a process per mutant)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    by_module = {f[:-3].replace("/", "."): f for f in files}
    here = os.getcwd()
    os.chdir(work)
    try:
        out = {}
        for n in names:
            path = next(f for m, f in by_module.items() if n.startswith(m + "."))
            text = get_diff_for_mutant(n, path=path)
            out[n] = "\n".join(line for line in text.splitlines()
                               if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
        return out
    finally:
        os.chdir(here)


def wanted(name: str, patterns: list[str] | None) -> bool:
    import fnmatch

    if not patterns:
        return True
    fn = name.rsplit(".", 1)[-1].split("__mutmut_")[0]
    fn = fn.split("ǁ")[-1]  # methods: x_Class__mutmut_... mangles as xǁClassǁmethod
    return any(fnmatch.fnmatch(fn, "x_" + p) for p in patterns)


def run_module(name: str, base: Path, jobs: int) -> dict:
    files, tests = MODULES[name]
    tests = [t for t in tests if (ROOT / t).exists()]
    work = base / name
    prepare(work, files, tests, DESELECT.get(name, []))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", OMP_NUM_THREADS="1")
    select = []
    if ONLY_FUNCTIONS.get(name):
        mod = files[0][:-3].replace("/", ".")
        select = [f"{mod}.x_{p}" + ("" if p.endswith("*") else "__mutmut_*") for p in ONLY_FUNCTIONS[name]]
    t0 = time.time()
    r = subprocess.run([mutmut_bin(), "run", "--max-children", str(jobs), *select], cwd=work, env=env,
                       capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:  # e.g. the clean run of the selected tests failed: no mutant was tested
        raise SystemExit(f"mutation: mutmut failed on {name} (exit {r.returncode}):\n{r.stdout[-3000:]}\n"
                         f"{r.stderr[-3000:]}")
    return {"files": files, "tests": tests, "deselected": DESELECT.get(name, []),
            "mutated_functions": ONLY_FUNCTIONS.get(name, "all"), "workdir": str(work), "wall_s": round(wall, 1),
            **score(name, work)}


def score(name: str, work: Path) -> dict:
    """Counts, score and surviving mutants of a module's finished run, with the current EQUIVALENT list."""
    status = {k: v for k, v in read_results(work).items() if wanted(k, ONLY_FUNCTIONS.get(name))}
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    survivors = sorted(k for k, s in status.items() if s in ("survived", "no tests", "suspicious"))
    equivalent = {k: EQUIVALENT[k] for k in survivors if k in EQUIVALENT}
    live = [k for k in survivors if k not in equivalent]
    killed = sum(1 for s in status.values() if s in ("killed", "timeout", "segfault", "caught by type check"))
    unchecked = counts.get("not checked", 0)  # a run stopped before the end: those mutants are not scored
    scored = len(status) - len(equivalent) - unchecked
    return {"mutants": len(status), "status_counts": counts, "killed": killed, "equivalent": equivalent,
            "not_checked": unchecked,
            "score": round(killed / scored, 4) if scored else None,
            "survivors": diffs(work, live, MODULES[name][0])}


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "platform": platform.platform(),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_1_5_15_at_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(MODULES), help="modules to run (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/grlo-mutation"))
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "mutation.json")
    ap.add_argument("--rescore", action="store_true",
                    help="recount --output's modules from their workdirs with the current EQUIVALENT list (no run)")
    a = ap.parse_args(argv)
    if a.rescore:
        out = json.loads(a.output.read_text())
        for name, res in out["modules"].items():
            res.update(score(name, Path(res["workdir"])))
        write(out, a.output, out["total"]["wall_s_this_run"])
        print(f"rescored {len(out['modules'])} modules: {100 * out['total']['score']:.1f} % -> {a.output}")
        return 0
    names = a.only or list(MODULES)
    out = json.loads(a.output.read_text()) if a.output.exists() and a.only else {}
    out.update(command=" ".join(["benchmarks/mutation.py", *(argv if argv is not None else sys.argv[1:])]),
               tool="mutmut " + _version(), machine=machine())
    out.setdefault("modules", {})
    t0 = time.time()
    for name in names:
        load = [round(x, 2) for x in os.getloadavg()]
        res = run_module(name, a.workdir, a.jobs)
        res["load_average_1_5_15_at_start"] = load
        out["modules"][name] = res
        print(f"{name}: {res['killed']}/{res['mutants'] - len(res['equivalent'])} killed "
              f"({100 * (res['score'] or 0):.1f} %), {len(res['survivors'])} survived, {res['wall_s']} s", flush=True)
        write(out, a.output, time.time() - t0)  # after each module: a long run keeps what it has done
    print(f"total: {out['total']['killed']}/{out['total']['scored']} killed ({100 * out['total']['score']:.1f} %) "
          f"-> {a.output}")
    return 0


def write(out: dict, output: Path, wall: float) -> None:
    mods = out["modules"].values()
    killed = sum(m["killed"] for m in mods)
    scored = sum(m["mutants"] - len(m["equivalent"]) - m.get("not_checked", 0) for m in mods)
    out["total"] = {"killed": killed, "scored": scored, "score": round(killed / scored, 4) if scored else None,
                    "wall_s_this_run": round(wall, 1)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
