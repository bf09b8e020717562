# GRLO reproduction workflow. Paper mode: `snakemake --cores all --use-singularity`.
# Smoke mode (CPU, offline): `snakemake --cores 2 --configfile config/smoke.yaml`.

import grlo.config

# Snakemake's own YAML error does not name the file: parse it first (one line: file, line, problem).
grlo.config.preflight(["config/config.yaml"])


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/lmeval.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
