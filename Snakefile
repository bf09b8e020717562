# GRLO reproduction workflow. Paper mode: `snakemake --cores all --resources gpu=8 --sdm apptainer` (README).
# Smoke mode (CPU, offline): `snakemake --cores 2 --configfile config/smoke.yaml`.

import os

import grlo.config

# Snakemake's own YAML error does not name the file: parse it first (one line: file, line, problem). A missing file
# is left to Snakemake (with --directory elsewhere and --configfile given, it skips the directive below).
grlo.config.preflight([p for p in ["config/config.yaml"] if os.path.exists(p)])


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/lmeval.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/protocol.smk"


# On SLURM these run on the submitting host, not as one sbatch job each: downloads (compute nodes often have no
# network; fetch_model streams weights into the shared cache) and the seconds-long report rules.
localrules:
    all,
    download_prompts,
    download_benchmark,
    download_rlvr_data,
    fetch_model,
    table,
    table1,
    claims,
    gpu_hours,
    forecast,
    figures,
    report_html,
    browse,
    protocol_card,
    claims_preview,
    committed_results,


rule all:
    default_target: True
    input:
        all_targets(),
