"""scripts/validate_mix.py: the validation table of docs/policy.md, on a tiny mix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.train import TrainConfig
from gnnrl.testing.apps import write_tiny_app

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "validate_mix.py"


def _tiny_mix(tmp_path: Path, trace: str, steps: int) -> Path:
    """A training-mix config on a 4-service app: one trace, one peak, static topology."""
    config = tmp_path / "mix.json"
    config.write_text(TrainConfig(
        app=str(write_tiny_app(tmp_path)), traces=(trace,), peaks=(200.0,),
        topology=("static",), max_steps=steps, seed=3,
        policy=PolicyConfig(max_nodes=4, max_edges=4)).to_json())
    return config


@pytest.fixture(scope="module")
def validate_mix():
    spec = importlib.util.spec_from_file_location("validate_mix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_table_scores_each_policy_and_dial_against_the_hpa_sweep(
        tmp_path, validate_mix, capsys):
    config = _tiny_mix(tmp_path, "diurnal", 30)
    out = tmp_path / "val.csv"
    assert validate_mix.main(["--config", str(config), "--policies", "gnnrl,oracle@dial",
                              "--dials", "0,1", "--hpa-sweep", "30,90", "--every", "1",
                              "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(zip(table.policy, table.dial, strict=True)) == {
        ("gnnrl", 0.0), ("gnnrl", 1.0), ("oracle@dial", 0.0), ("oracle@dial", 1.0),
        ("hpa-30", 0.5), ("hpa-90", 0.5)}
    rows = table.set_index("policy")
    # a lower CPU target holds more pods; both HPA points lie on their own envelope
    assert rows.loc["hpa-30", "replica_hours"] > rows.loc["hpa-90", "replica_hours"]
    assert (table["reversals"] >= 0).all()
    assert "gnnrl" in capsys.readouterr().out


def test_validation_refuses_an_unknown_policy_spec(tmp_path, validate_mix):
    with pytest.raises(ConfigError, match="unknown policy 'nonsense'"):
        validate_mix.main(["--policies", "nonsense", "--dials", "0.5", "--hpa-sweep", "70",
                           "--every", "100"])


def test_guard_variants_run_side_by_side_and_the_default_is_the_scaler_s(tmp_path, validate_mix):
    config = _tiny_mix(tmp_path, "flash", 40)
    out = tmp_path / "val.csv"
    assert validate_mix.main(["--config", str(config), "--policies",
                              "gnnrl,gnnrl~120-360,gnnrl~0-0", "--dials", "0",
                              "--hpa-sweep", "70", "--every", "1", "--out", str(out)]) == 0
    rows = pd.read_csv(out).set_index("policy")
    cols = ["violation_pct", "replica_hours", "reversals"]
    assert rows.loc["gnnrl", cols].tolist() == rows.loc["gnnrl~120-360", cols].tolist()
    # no window and no delay: every scale-down the model asks for goes through at once
    assert rows.loc["gnnrl~0-0", "replica_hours"] <= rows.loc["gnnrl", "replica_hours"]


@pytest.mark.parametrize("spec, says", [
    ("gnnrl~120", "WINDOW-DELAY"), ("gnnrl-raw~120-360", "only gnnrl .as deployed."),
    ("hpa~1-2", "unknown policy"), ("gnnrl~two-minutes", r"gnnrl\[:PATH\]\[~G\]"),
])
def test_a_malformed_guard_variant_is_refused(validate_mix, spec, says):
    with pytest.raises(ConfigError, match=says):
        validate_mix.main(["--policies", spec, "--dials", "0.5", "--hpa-sweep", "70",
                           "--every", "100"])
