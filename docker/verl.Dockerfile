# Image of the verl engine (paper mode's `train_grlo` with grlo.engine: verl; config `container.verl_image`).
# Every other rule uses the main image (../Dockerfile): verl 0.6.1 cannot share it (torch 2.8 / vLLM <= 0.11 / numpy < 2
# here; torch 2.13 / vLLM 0.31 / transformers 5 there). Build, push and use: docs/gpu.md ("The verl image").
#   docker build -f docker/verl.Dockerfile -t grlo-verl:0.1.0 .
# Why verl 0.6.1: train.sh's 46 overrides compose unchanged on it and a custom reward manager (our style_mix)
# receives the reward model's scores there (docs/grlo_ppo.md).
# The set below is verl 0.6.1's own: its [vllm] extra allows vllm >=0.8.5,<=0.11.0; vllm 0.11.0 pins torch 2.8.0
# (torchaudio 2.8.0, torchvision 0.23.0, xformers 0.0.32.post1) and needs transformers >= 4.55.2 and ray >= 2.48;
# verl needs numpy < 2 and tensordict <= 0.10.0; its [gpu] extra adds flash-attn and liger-kernel.
# torch 2.8.0 from PyPI is a CUDA 12.8 build: a CUDA 12.8 devel base (nvcc for flash-attn's build fallback).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04
FROM ${CUDA_IMAGE}
ARG CUDA_IMAGE

ARG GRLO_VERSION=0.1.0
ARG UID=1000
ARG GID=1000

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/cache/huggingface \
    TRITON_CACHE_DIR=/cache/triton \
    VLLM_CACHE_ROOT=/cache/vllm \
    XDG_CACHE_HOME=/cache/xdg \
    RAY_TMPDIR=/tmp/ray \
    TOKENIZERS_PARALLELISM=false \
    WANDB_DIR=/cache/wandb

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git ca-certificates build-essential \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

# verl 0.6.1's stack, exact pins (tests/test_verl_image.py checks that every requirement is pinned).
RUN pip install \
      "torch==2.8.0" \
      "torchaudio==2.8.0" \
      "torchvision==0.23.0" \
      "vllm==0.11.0" \
      "transformers==4.56.2" \
      "tokenizers==0.22.1" \
      "accelerate==1.10.1" \
      "peft==0.17.1" \
      "datasets==4.1.1" \
      "pyarrow==21.0.0" \
      "numpy==1.26.4" \
      "pandas==2.3.3" \
      "ray[default]==2.49.2" \
      "tensordict==0.10.0" \
      "hydra-core==1.3.2" \
      "omegaconf==2.3.0" \
      "codetiming==1.4.0" \
      "dill==0.3.8" \
      "pybind11==3.0.1" \
      "pylatexenc==2.10" \
      "torchdata==0.11.0" \
      "liger-kernel==0.6.2" \
      "wandb==0.22.0" \
      "tensorboard==2.20.0" \
      "pyyaml==6.0.2" \
      "jsonschema==4.25.1" \
      "math-verify[antlr4_9_3]==0.9.0" \
      "tqdm==4.67.1" \
      "nvidia-ml-py==12.575.51"
# flash-attn's setup fetches its prebuilt wheel for this torch/CUDA/Python (no compile) when one exists. Its setup.py
# imports wheel (and, when it must compile, ninja/packaging/psutil) from the environment (--no-build-isolation), so
# those come first; MAX_JOBS bounds the compile fallback's parallel nvcc jobs (each can take several GB of RAM).
RUN pip install "wheel==0.45.1" "ninja==1.13.0" "packaging==25.0" "psutil==7.1.0"
RUN MAX_JOBS=4 pip install --no-build-isolation "flash-attn==2.8.3"
RUN pip install --no-deps "verl==0.6.1" \
 && python -c "import verl, vllm, torch, flash_attn; print(verl.__version__, vllm.__version__, torch.__version__)"

# Our package, without its own dependencies (those are the main image's torch 2.13 / transformers 5 set): the verl
# trainer process imports grlo.train.verl.plugin (registers style_mix), which needs only the pins above.
COPY pyproject.toml README.md /opt/grlo/
COPY grlo /opt/grlo/grlo
COPY results/paper /opt/grlo/results/paper
COPY workflow/schemas /opt/grlo/workflow/schemas
RUN pip install --no-deps -e /opt/grlo \
 && python -c "from grlo.train.verl import plugin; from verl.workers.reward_manager import get_reward_manager_cls; \
print(get_reward_manager_cls('style_mix'))"

RUN (userdel -r ubuntu 2>/dev/null || true) \
 && groupadd -g ${GID} grlo && useradd -m -u ${UID} -g ${GID} -s /bin/bash grlo \
 && mkdir -p /cache /work && chown grlo:grlo /cache /work
VOLUME ["/cache"]
WORKDIR /work
USER grlo

LABEL org.opencontainers.image.title="grlo-verl" \
      org.opencontainers.image.description="GRLO reproduction: the verl 0.6.1 training engine (paper mode train_grlo)" \
      org.opencontainers.image.version="${GRLO_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.grlo.base="${CUDA_IMAGE}" \
      org.grlo.verl="0.6.1" \
      org.grlo.torch="2.8.0" \
      org.grlo.vllm="0.11.0" \
      org.grlo.transformers="4.56.2" \
      org.grlo.flash_attn="2.8.3"

CMD ["grlo", "train-grlo", "--help"]
