"""What an installed (non-editable) package carries: the wheel holds the DAG, its
components, the compiled pipeline and the scaler manifests, and the pipeline commands work
from it with no source checkout around."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built as a wheel (from a copy of the sources: the build leaves files
    behind) and unpacked as site-packages would hold it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gnnrl", src / "gnnrl",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("gnnrl-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def test_the_wheel_ships_the_dag_components_compiled_pipeline_and_manifests(installed):
    pkg = installed / "gnnrl"
    for path in ("pipeline/dag.py", "pipeline/components/train.py",
                 "pipeline/gnnrl_pipeline.yaml", "manifests/kustomization.yaml",
                 "manifests/deployment.yaml"):
        assert (pkg / path).is_file(), path


def test_pipeline_compile_and_deploy_render_run_from_the_installed_package(installed,
                                                                         tmp_path):
    code = """
import sys
from pathlib import Path
import gnnrl
from gnnrl.pipeline.deploy import default_manifest_dir, load_manifests, render
from gnnrl.pipeline.runner import COMMITTED_YAML, compile_pipeline
site = Path(sys.argv[1])
assert Path(gnnrl.__file__).is_relative_to(site), gnnrl.__file__
compile_pipeline("fresh.yaml")
assert Path("fresh.yaml").read_text() == COMMITTED_YAML.read_text()
docs = render(load_manifests(default_manifest_dir()), "3", "shop")
print(sorted(d["kind"] for d in docs))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("GNNRL_IMAGE", "GNNRL_MANIFESTS")}
    env["PYTHONPATH"] = str(installed)
    proc = subprocess.run([sys.executable, "-c", code, str(installed)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'ConfigMap'" in proc.stdout and "'Deployment'" in proc.stdout
