# One image for every pipeline step (KFP components) and for the in-cluster scaler (the
# package with its `pipeline` and `scaler` extras; `Dockerfile.scaler` is the scaler alone).
#
#   docker build -t ghcr.io/gnnrl/gnnrl:0.1.0 .                        # CPU torch (default)
#   docker build -t ghcr.io/gnnrl/gnnrl:0.1.0-cu124 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 .   # CUDA torch
#
# The CUDA wheels bundle the CUDA runtime (nvidia-* wheels); the node only needs the driver
# (NVIDIA device plugin). Components run `python3 -m kfp.dsl.executor_main` in this image
# (install_kfp_package=False), so kfp is installed here with the package.
#
# The base is pinned to a patch release and a Debian release. For a reproducible build pin
# its digest too (it cannot be checked without a registry, so it is not done here):
#   docker buildx imagetools inspect python:3.11.13-slim-bookworm    # prints "Digest: sha256:..."
#   docker build --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest> ...
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE}

# PyTorch's wheel index: .../whl/cpu (default) or .../whl/cu124 etc. for a CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/gnnrl

# Two steps, each from one index: torch alone from PyTorch's index (the CPU build by
# default), then the package from PyPI only. Torch is already installed and the constraint
# pins it, so the second step can never swap in PyPI's (multi-GB CUDA) torch: a dependency
# asking for another torch fails the build instead.
RUN python3 -m pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY gnnrl ./gnnrl
RUN echo "torch==${TORCH_VERSION}" > /tmp/torch-constraint.txt \
    && python3 -m pip install --index-url https://pypi.org/simple \
        --constraint /tmp/torch-constraint.txt ".[pipeline,scaler]" \
    && rm /tmp/torch-constraint.txt \
    && rm -rf gnnrl pyproject.toml README.md build \
    && python3 -c "import gnnrl, kfp, mlflow, torch, torch_geometric; print(torch.__version__)"
# The DAG, its components, the compiled pipeline and the scaler manifests (the deploy step
# renders these) are in the installed package.

# Non-root (the scaler's Deployment runs as 65532 with a read-only root filesystem:
# every cache goes to /tmp).
RUN groupadd --gid 65532 gnnrl \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gnnrl
ENV HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 65532:65532

CMD ["gnnrl", "--help"]
