"""Hot reload from the MLflow registry (a real sqlite-backed registry, no server): the
scaler follows the `champion` alias, verifies the recorded hash, and keeps the model it has
when the new champion cannot be loaded (S1, S3)."""

from __future__ import annotations

import hashlib

import pytest
from scaler_support import edit_model_config, save_tiny_model

from gnnrl.scaler.clock import FakeClock
from gnnrl.scaler.model_source import SHA_TAG, ModelSource, RegistryResolver


@pytest.fixture
def registry(sqlite_uri):
    uri = sqlite_uri
    import mlflow
    from mlflow.tracking import MlflowClient

    from gnnrl.registry.pyfunc_model import MODEL_NAME, log_pyfunc

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def promote(model_dir, sha: str | None = None) -> str:
        with mlflow.start_run():
            info = log_pyfunc(model_dir)
        mv = mlflow.register_model(info.model_uri, MODEL_NAME)
        digest = sha or hashlib.sha256((model_dir / "weights.pt").read_bytes()).hexdigest()
        client.set_model_version_tag(MODEL_NAME, mv.version, SHA_TAG, digest)
        client.set_registered_model_alias(MODEL_NAME, "champion", mv.version)
        return str(mv.version)

    return uri, promote


def test_champion_alias_move_is_hot_reloaded_and_a_bad_champion_keeps_the_old_model(
        registry, tmp_path):
    uri, promote = registry
    clock = FakeClock()
    source = ModelSource("models:/gnnrl-scaler@champion", "", clock, poll_s=60,
                         backoff_s=(5.0, 60.0), resolver_factory=lambda: RegistryResolver(uri))
    assert promote(save_tiny_model(tmp_path / "v1")) == "1"
    assert source.poll() and source.current.version == "1"
    v2 = save_tiny_model(tmp_path / "v2")
    assert promote(v2) == "2"
    assert not source.poll()  # not due yet: the registry is polled every 60 s
    clock.advance(60)
    assert source.poll() and source.current.version == "2"  # hot reload
    assert source.current.uri == "models:/gnnrl-scaler/2"

    v3 = save_tiny_model(tmp_path / "v3")
    edit_model_config(v3, observation_schema_version=999)
    promote(v3)
    clock.advance(60)
    assert not source.poll()
    assert source.current.version == "2"  # the old model stays
    assert source.error.reason == "schema"

    v4 = save_tiny_model(tmp_path / "v4")
    promote(v4, sha="0" * 64)  # the recorded hash does not match the weights
    clock.advance(60)
    assert not source.poll()
    assert source.current.version == "2" and source.error.reason == "model_load"
    assert "sha256" in str(source.error)


def save_model(path, seed: int):
    """A real (untrained) PPO_GNN folder whose weights depend on `seed`."""
    import torch

    from gnnrl.core.agents.configs import PolicyConfig
    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    torch.manual_seed(seed)
    PPO_GNN(config=PolicyConfig(hidden_dim=16)).save(path)
    return path


def replace_model(src, dst) -> None:
    """Copy a model folder's files over another's (what a `kubectl cp` or a volume update
    does: new mtimes)."""
    import shutil

    for name in ("config.json", "weights.pt"):
        shutil.copy(src / name, dst / name)


def test_local_model_folder_is_reloaded_when_its_weights_change_and_a_corrupt_one_is_kept_out(
        tmp_path):
    import os

    from gnnrl.scaler.config import ScalerConfig
    from gnnrl.scaler.loop import Scaler
    from gnnrl.scaler.sim_cluster import SimCluster

    live = save_model(tmp_path / "live", seed=0)
    clock = FakeClock()
    source = ModelSource(str(live), "", clock, poll_s=5, backoff_s=(5.0, 5.0))
    scaler = Scaler(ScalerConfig(namespace="sim", source="sim", model=str(live),
                                 services={"frontend": {"min_replicas": 1, "max_replicas": 5}}),
                    SimCluster("onlineboutique", clock), clock, models=source)
    scaler.start()
    first = source.current.sha256
    assert source.loads == 1

    clock.advance(5)
    os.utime(live / "weights.pt")  # touched, same bytes: not reloaded
    scaler.tick()
    assert source.loads == 1 and source.current.sha256 == first

    replace_model(save_model(tmp_path / "v2", seed=1), live)
    clock.advance(5)
    scaler.tick()
    second = source.current.sha256
    assert source.loads == 2 and second != first  # hot reload
    assert scaler.metrics.value("gnnrl_scaler_model_info",
                                {"uri": str(live), "version": "local", "sha256": second}) == 1

    (live / "weights.pt").write_bytes(b"half-copied garbage")
    clock.advance(5)
    scaler.tick()
    assert source.current.sha256 == second and source.error.reason == "model_load"
    assert scaler.fallback.reason != "model_load"  # the running model goes on
    clock.advance(5)
    assert not source.poll() and source.loads == 2  # the same broken files: not retried

    replace_model(save_model(tmp_path / "v3", seed=2), live)
    clock.advance(5)
    assert source.poll() and source.loads == 3 and source.error is None
