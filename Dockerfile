# One image for every pipeline step (KFP components) and for the in-cluster scaler.
#
#   docker build -t ghcr.io/gnnrl/gnnrl:0.1.0 .                        # CPU torch (default)
#   docker build -t ghcr.io/gnnrl/gnnrl:0.1.0-cu124 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 .   # CUDA torch
#
# The CUDA wheels bundle the CUDA runtime (nvidia-* wheels); the node only needs the driver
# (NVIDIA device plugin). Components run `python3 -m kfp.dsl.executor_main` in this image
# (install_kfp_package=False), so kfp is installed here with the package.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# PyTorch's wheel index: .../whl/cpu (default) or .../whl/cu124 etc. for a CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/gnnrl

# torch first and alone, from the chosen index, so the package install below never
# resolves a different (multi-GB CUDA) build from PyPI.
RUN python3 -m pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY gnnrl ./gnnrl
RUN python3 -m pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" . \
    && python3 -c "import gnnrl, kfp, mlflow, torch, torch_geometric; print(torch.__version__)"

# The DAG, its components and the scaler manifests (the deploy step renders these).
COPY components ./components
COPY pipelines ./pipelines
COPY manifests ./manifests

# Non-root (the scaler's Deployment runs as 65532 with a read-only root filesystem:
# every cache goes to /tmp).
RUN groupadd --gid 65532 gnnrl \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gnnrl
ENV HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    GNNRL_MANIFESTS=/opt/gnnrl/manifests \
    GNNRL_HOME=/opt/gnnrl \
    PYTHONPATH=/opt/gnnrl
USER 65532:65532

CMD ["gnnrl", "--help"]
