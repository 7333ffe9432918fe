"""Fixtures several test modules build the same way: the HTTP-level fakes of the services
GNNRL talks to (`gnnrl.testing`) and a private MLflow registry on SQLite.

A module that needs a populated fake overrides the fixture and requests the parent::

    @pytest.fixture
    def kube(kube):
        kube.add_deployment("frontend", "shop", replicas=3)
        return kube
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gnnrl.testing.k8s_fake import FakeKubernetes
from gnnrl.testing.kiali_fake import FakeKiali


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    """A started, empty fake Kubernetes API (`kube.api_client()` talks to it)."""
    with FakeKubernetes() as fake:
        yield fake


@pytest.fixture
def kiali() -> Iterator[FakeKiali]:
    """A started fake Kiali under the ``/kiali`` prefix serving no namespace yet
    (`kiali.set_graph(namespace, payload)`)."""
    with FakeKiali(prefix="/kiali") as fake:
        yield fake


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch) -> str:
    """An MLflow tracking/registry URI on a fresh SQLite file; the test runs in `tmp_path`
    so MLflow's ``mlruns/`` artifacts stay there. ``MLFLOW_TRACKING_URI`` is set to it for
    the test and restored after (``mlflow.set_tracking_uri`` writes that variable, which
    would otherwise leak into later tests and their child processes)."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
