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
def registry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # mlruns/ artifacts stay in the test folder
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
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
