"""Lean installs: the scaler runs from the ``gnnrl[scaler]`` install (`Dockerfile.scaler`):
training and pipeline packages absent, ``gnnrl scaler run`` still works, and a registry
model (which needs MLflow) is refused at start with one line saying what to install.

"Absent" is simulated in a child process by putting None into ``sys.modules`` for each
package, which makes ``import <package>`` raise ImportError exactly as if it were missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scaler_support import save_tiny_model

ROOT = Path(__file__).resolve().parents[1]
#: what `gnnrl[train]` and `gnnrl[pipeline]` add and the scaler must not need
NOT_IN_SCALER = ("mlflow", "kfp", "sb3_contrib", "matplotlib")

_WITHOUT = f"""
import sys
for name in {NOT_IN_SCALER!r}:
    sys.modules[name] = None
from gnnrl.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def scaler_without_train_and_pipeline(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, "-c", _WITHOUT, "scaler", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=240)


def test_every_scaler_module_imports_without_train_and_pipeline_packages():
    code = f"""
import pkgutil, sys, importlib
for name in {NOT_IN_SCALER!r}:
    sys.modules[name] = None
import gnnrl.scaler, gnnrl.commands.scaler
for info in pkgutil.iter_modules(gnnrl.scaler.__path__, "gnnrl.scaler."):
    importlib.import_module(info.name)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("with_model", [False, True], ids=["hpa-rule", "local-model"])
def test_scaler_runs_without_train_and_pipeline_packages(tmp_path, with_model):
    model = ["--model", str(save_tiny_model(tmp_path / "model"))] if with_model else []
    proc = scaler_without_train_and_pipeline("run", "--sim", "--ticks", "8", *model)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ticks"] == 8
    if with_model:  # the model acts once the fallback has seen it healthy for a while
        assert summary["rule_ticks"] < 8 and summary["fallback_reason"] is None
    else:
        assert summary["rule_ticks"] == 8 and summary["fallback_reason"] == "model_missing"


def test_a_registry_model_without_mlflow_is_refused_at_start_with_what_to_install():
    proc = scaler_without_train_and_pipeline("run", "--sim", "--ticks", "1",
                                             "--model", "models:/gnnrl-scaler@champion")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "models:/gnnrl-scaler@champion" in line and "MLflow" in line
    assert "gnnrl[scaler]" in line


@pytest.mark.parametrize(("absent", "argv", "extra"), [
    ("kfp", ["pipeline", "compile", "--out", "x.yaml"], "pipeline"),
    ("mlflow", ["registry", "list"], "pipeline"),
])
def test_a_command_whose_extra_is_not_installed_says_which_to_install(tmp_path, absent, argv,
                                                                       extra):
    code = ("import sys\n"
            f"sys.modules[{absent!r}] = None\n"
            "from gnnrl.cli import main\n"
            "raise SystemExit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert f"needs {absent}" in line and f"gnnrl[{extra}]" in line
