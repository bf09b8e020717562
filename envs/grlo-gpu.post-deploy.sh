#!/usr/bin/env bash
# Snakemake runs this once after creating the conda env (--sdm conda), from the workflow's working directory:
# install the grlo package itself (its pinned dependencies are in the env file already).
set -euo pipefail
pip install --no-deps -e "${GRLO_SRC:-.}"
