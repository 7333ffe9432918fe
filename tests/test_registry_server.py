"""The registry against a real `mlflow server` process on loopback (not only the SQLite file).

The fixture starts ``mlflow server --workers 1`` (`gnnrl.testing.mlflow_fake.MlflowServer`)
on a free port with its own SQLite backend and artifact folder, waits for ``/health``, and
stops it (SIGTERM, then SIGKILL) after.
"""

from __future__ import annotations

import os
import signal

import pytest

from gnnrl.registry.promote import CHAMPION, alias_version, list_versions, register_and_gate
from gnnrl.registry.tracking import RegistryUnavailableError
from gnnrl.testing.mlflow_fake import MlflowProxy, MlflowServer, alias_writes
from tests.registry_support import make_model, summary


@pytest.fixture
def mlflow_server(tmp_path):
    with MlflowServer(tmp_path) as server:
        yield server


def test_mlflow_server_failures_never_move_the_champion(tmp_path, mlflow_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = mlflow_server.uri
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    assert v1.promoted and alias_version(uri, CHAMPION) == v1.version
    assert (tmp_path / "artifacts").is_dir(), "artifacts went through the server's proxy"
    better = summary((0.0, 1.0), champion=(0.01, 9.0))
    gate_args = {"champion_policy": "champion", "champion_version_evaluated": v1.version}

    # 1. the server dies between "version created" and "aliases set": no new champion
    with MlflowProxy(uri, refuse=alias_writes) as proxy:
        _, second = make_model(tmp_path, 1)
        with pytest.raises(Exception, match=r"503|alias"):
            register_and_gate(second, better, "cand", tracking_uri=proxy.url, **gate_args)
    assert proxy.refused, "the alias write was attempted and refused"
    assert alias_version(uri, CHAMPION) == v1.version
    assert [r["version"] for r in list_versions(uri)] == ["2", v1.version]

    # 2. the server is down: the step fails naming the URI before writing anything
    mlflow_server.stop()
    _, third = make_model(tmp_path, 2)
    with pytest.raises(RegistryUnavailableError, match=uri.replace(".", r"\.")):
        register_and_gate(third, better, "cand", tracking_uri=uri, **gate_args)
    # read the server's own database directly: the champion did not move, nothing new
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    assert alias_version(backend, CHAMPION) == v1.version
    assert [r["version"] for r in list_versions(backend)] == ["2", v1.version]


def test_server_killed_right_after_the_version_is_created_leaves_no_new_champion(
        tmp_path, mlflow_server, monkeypatch):
    """The `mlflow server` process is SIGKILLed at the client boundary between
    `register_model` (the version exists) and the first tag/alias call."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = mlflow_server.uri
    _, first = make_model(tmp_path, 0)
    v1 = register_and_gate(first, summary((0.01, 9.0)), "cand", tracking_uri=uri)
    assert v1.promoted
    real_tag = MlflowClient.set_model_version_tag

    def kill_then_tag(self, *args, **kwargs):
        if mlflow_server.proc.poll() is None:
            os.killpg(mlflow_server.proc.pid, signal.SIGKILL)
            mlflow_server.proc.wait(timeout=10)
        return real_tag(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", kill_then_tag)
    _, second = make_model(tmp_path, 1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, it must raise
        register_and_gate(second, summary((0.0, 1.0), champion=(0.01, 9.0)), "cand",
                          tracking_uri=uri, champion_policy="champion",
                          champion_version_evaluated=v1.version)
    backend = f"sqlite:///{tmp_path / 'server.db'}"  # the dead server's own database
    assert alias_version(backend, CHAMPION) == v1.version
    versions = {r["version"]: r for r in list_versions(backend)}
    assert set(versions) == {"2", v1.version}
    assert versions["2"]["tags"].get("gate.decision") is None  # not marked as gated either
