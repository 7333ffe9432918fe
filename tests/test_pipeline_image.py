"""The container image recipe (no Docker daemon here: the Dockerfile is parsed and checked)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gnnrl

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
#: the lean image of the in-cluster scaler
SCALER_DOCKERFILE = REPO_ROOT / "Dockerfile.scaler"
BOTH = pytest.mark.parametrize("dockerfile", [DOCKERFILE, SCALER_DOCKERFILE],
                               ids=["full", "scaler"])


def instructions(dockerfile=DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@BOTH
def test_image_runs_as_a_non_root_user(dockerfile):
    users = [args for word, args in instructions(dockerfile) if word == "USER"]
    assert users, "the image must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "65532", "matches runAsUser of gnnrl/manifests/deployment.yaml"


@BOTH
def test_torch_comes_from_the_cpu_index_by_default_and_is_switchable(dockerfile):
    args = dict(a.split("=", 1) for w, a in instructions(dockerfile) if w == "ARG" and "=" in a)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    runs = " ".join(a for w, a in instructions(dockerfile) if w == "RUN")
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in runs
    pinned = re.search(r'"torch==([\d.]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert args["TORCH_VERSION"] == pinned.group(1), "same torch as pyproject.toml"


def test_image_has_the_package_kfp_and_what_the_steps_read():
    copies = [a.split()[0] for w, a in instructions() if w == "COPY"]
    for path in ("gnnrl", "pyproject.toml"):  # the DAG and the manifests are package data
        assert path in copies, path
    runs = " ".join(a for w, a in instructions() if w == "RUN")
    assert re.search(r'pip install [^&]* "\.\[pipeline,scaler\]"', runs), \
        "the package is installed with the pipeline's (kfp) and the scaler's extras"
    assert "import gnnrl, kfp" in runs


def test_scaler_image_installs_the_scaler_extra_only():
    runs = " ".join(a for w, a in instructions(SCALER_DOCKERFILE) if w == "RUN")
    (extras,) = re.findall(r'pip install [^&]* "\.\[([a-z,]+)\]"', runs)
    assert extras == "scaler"
    copies = [a.split()[0] for w, a in instructions(SCALER_DOCKERFILE) if w == "COPY"]
    assert copies == ["pyproject.toml", "gnnrl"], copies
    assert "kfp" in runs, "the build checks that the pipeline's packages stayed out"


def test_image_tag_used_by_the_components_matches_the_package_version():
    source = (REPO_ROOT / "gnnrl" / "pipeline" / "components" / "__init__.py").read_text()
    default = re.search(r'"GNNRL_IMAGE", "([^"]+)"', source).group(1)
    assert default == f"ghcr.io/gnnrl/gnnrl:{gnnrl.__version__}"


def test_build_context_leaves_out_local_state():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".git", "mlflow.db", "mlruns", "runs", "tests"):
        assert entry in ignored, entry


@BOTH
def test_each_pip_step_uses_one_explicit_index_and_the_base_is_pinned(dockerfile):
    runs = [a for w, a in instructions(dockerfile) if w == "RUN" and "pip install" in a]
    assert not any("--extra-index-url" in r for r in runs), "one index per step"
    assert all("--index-url" in r for r in runs)
    package = next(r for r in runs if re.search(r'pip install [^&]* "\.\[', r))
    assert "--index-url https://pypi.org/simple" in package
    assert "--constraint" in package, "PyPI may not replace the torch build of step one"
    args = dict(a.split("=", 1) for w, a in instructions(dockerfile) if w == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", args["PYTHON_IMAGE"])
    assert "docker buildx imagetools inspect" in dockerfile.read_text()
