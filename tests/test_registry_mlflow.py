"""MLflow registry against a real SQLite store: pyfunc round trip, gate outcomes, outages."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrl.registry.gate import GateConfig
from gnnrl.registry.promote import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    list_versions,
    register_and_gate,
    show_version,
)
from gnnrl.registry.pyfunc_model import MODEL_NAME, act_sequence, download_model_dir, to_batch
from gnnrl.registry.tracking import RegistryUnavailableError
from gnnrl.testing.loopback import free_port
from tests.registry_support import NODES, make_model, observations, summary


def test_pyfunc_champion_gives_the_same_actions_as_the_in_process_policy(tmp_path, sqlite_uri):
    import mlflow.pyfunc

    policy, model_dir = make_model(tmp_path)
    result = register_and_gate(model_dir, summary((0.01, 9.0)), "cand", tracking_uri=sqlite_uri)
    assert result.promoted and alias_version(sqlite_uri, CHAMPION) == result.version

    obs = observations(6)
    mlflow.set_registry_uri(sqlite_uri)
    mlflow.set_tracking_uri(sqlite_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    remote = loaded.predict(to_batch(obs))
    expected = act_sequence(policy, to_batch(obs), reset=True)
    assert remote.shape == (6, NODES)
    np.testing.assert_array_equal(remote, expected)
    # the tick sequence carries temporal memory: a continued call is not a fresh one
    again = loaded.predict(to_batch(obs[:2]), params={"reset": True})
    np.testing.assert_array_equal(again, expected[:2])
    names = ["frontend", "cart", "checkout", "ads", "", ""]
    remapped = loaded.predict(to_batch(obs), params={"reset": True, "slot_names": names})
    np.testing.assert_array_equal(
        remapped, act_sequence(policy, to_batch(obs), reset=True, slot_names=names)
    )
    assert {"python_function"} <= set(loaded.metadata.flavors)
    # the trained folder comes back intact (what evaluation and the scaler load)
    folder = download_model_dir(f"models:/{MODEL_NAME}/{result.version}", tmp_path / "dl",
                                sqlite_uri)
    assert (folder / "weights.pt").read_bytes() == (model_dir / "weights.pt").read_bytes()
    assert loaded.metadata.signature.params is not None


def test_worse_challenger_is_recorded_and_leaves_the_champion(tmp_path, sqlite_uri):
    _, first = make_model(tmp_path, 0)
    _, second = make_model(tmp_path, 1)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=sqlite_uri)
    v2 = register_and_gate(
        second, summary((0.20, 12.0), champion=(0.01, 9.0)), "cand",
        champion_policy="champion", champion_version_evaluated=v1.version,
        gate=GateConfig(), tracking_uri=sqlite_uri,
    )
    assert not v2.promoted
    assert alias_version(sqlite_uri, CHAMPION) == v1.version
    assert alias_version(sqlite_uri, CHALLENGER) == v2.version
    tags = show_version(v2.version, sqlite_uri)["tags"]
    assert tags["gate.decision"] == "rejected"
    assert "slo_violation_rate 0.2000" in tags["gate.reason"]
    assert tags["gate.previous_champion"] == v1.version
    assert len(tags["weights_sha256"]) == 64
    assert [r["version"] for r in list_versions(sqlite_uri)] == [v2.version, v1.version]


def test_gate_refuses_a_comparison_against_a_stale_champion(tmp_path, sqlite_uri):
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=sqlite_uri)
    v2 = register_and_gate(first, summary((0.0, 1.0)), "cand", tracking_uri=sqlite_uri,
                           champion_version_evaluated=None)
    assert not v2.promoted
    assert "re-run the evaluation" in show_version(v2.version, sqlite_uri)["tags"]["gate.reason"]
    assert alias_version(sqlite_uri, CHAMPION) == v1.version


def test_unreachable_mlflow_fails_naming_the_uri_and_registers_nothing(tmp_path, sqlite_uri):
    _, model_dir = make_model(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailableError, match=uri.replace(".", r"\.")):
        register_and_gate(model_dir, summary((0.0, 1.0)), "cand", tracking_uri=uri)
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'mlflow.db'}"
    with pytest.raises(RegistryUnavailableError, match="no-such-dir"):
        register_and_gate(model_dir, summary((0.0, 1.0)), "cand", tracking_uri=missing)
    assert not (tmp_path / "no-such-dir").exists()
