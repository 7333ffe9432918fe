"""Collecting from Kiali + Kubernetes (HTTP-level fakes of both) and `gnnrl collect --source
kiali` end to end against a local server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnnrl.data.clock import VirtualClock
from gnnrl.data.collector import CollectConfig, collect
from gnnrl.data.sources import ClientSource
from gnnrl.data.store import SnapshotWriter, read_dataset
from gnnrl.sources.kiali import KialiClient
from gnnrl.sources.kubernetes import KubernetesSource
from gnnrl.testing.k8s_fake import Fault
from gnnrl.testing.kiali_fake import FakeKiali

NS = "onlineboutique"
PAYLOAD = json.loads((Path(__file__).parent / "fixtures" / "kiali" /
                      "onlineboutique_workload_graph.json").read_text())


@pytest.fixture
def cluster(kiali, kube):
    kiali.set_graph(NS, PAYLOAD)
    kube.add_deployment("frontend", NS, replicas=3)
    kube.set_usage("frontend", NS, cpu_m_per_pod=120, mem_mi_per_pod=50)
    kube.add_deployment("cartservice", NS, replicas=2, ready_replicas=1)
    kube.set_usage("cartservice", NS, cpu_m_per_pod=80, mem_mi_per_pod=40)
    return kiali, kube


def source(kiali, kube) -> ClientSource:
    graph = KialiClient(kiali.url, retries=0, timeout_s=2.0)
    k8s = KubernetesSource(api_client=kube.api_client(), namespace=NS, request_timeout_s=2.0)
    return ClientSource("kiali", graph, NS, k8s)


def test_rows_combine_kiali_traffic_with_kubernetes_replicas_and_cpu(tmp_path, cluster):
    kiali, kube = cluster
    with SnapshotWriter(tmp_path) as w:
        summary = collect(source(kiali, kube), w, CollectConfig(interval_s=30, count=2),
                          VirtualClock())
    assert summary.snapshots == 2 and summary.gaps == 0
    nodes = read_dataset(tmp_path).nodes
    fe = nodes[nodes.service == "frontend"].iloc[0]
    assert fe.replicas == 3 and fe.cpu_m == pytest.approx(360)  # 3 pods x 120 m, no sidecar
    assert fe.rps_in > 0  # from Kiali
    cart = nodes[nodes.service == "cartservice"].iloc[0]
    assert (cart.replicas, cart.ready_replicas) == (2, 1)
    ads = nodes[nodes.service == "adservice"].iloc[0]  # Kiali sees it, no Deployment here
    assert ads.rps_in > 0 and np.isnan(ads.replicas)  # unknown, not zero


def test_kubernetes_api_outage_becomes_a_gap_then_recovers(tmp_path, cluster):
    kiali, kube = cluster
    kube.inject(Fault(status=503, method="GET", path=r"/deployments$", times=-1))
    clock = VirtualClock()
    with SnapshotWriter(tmp_path) as w:
        src = source(kiali, kube)
        first = collect(src, w, CollectConfig(interval_s=4, count=1, backoff_s=(1.0,)), clock)
        kube.clear_faults()
        second = collect(src, w, CollectConfig(interval_s=4, count=1), clock)
    assert first.gaps == 1 and first.attempts >= 2 and second.snapshots == 1
    gaps = read_dataset(tmp_path).gaps
    assert gaps.error.iloc[0].startswith("K8sUnavailable")


def test_gnnrl_collect_from_kiali_writes_the_services_of_the_namespace(tmp_path):
    out = tmp_path / "data"
    with FakeKiali() as kiali:
        kiali.set_graph(NS, PAYLOAD)
        proc = subprocess.run(
            [sys.executable, "-m", "gnnrl.cli", "collect", "--source", "kiali",
             "--kiali-url", kiali.url, "--namespace", NS, "--interval", "500ms",
             "--count", "2", "--out", str(out)],
            capture_output=True, text=True, timeout=60)
        graph_requests = len(kiali.requests)
    assert proc.returncode == 0, proc.stderr
    assert "snapshots: 2" in proc.stdout and graph_requests == 2
    data = read_dataset(out)
    assert data.nodes.ts.nunique() == 2 and "frontend" in data.services()
    assert (data.edges.namespace == NS).all() and len(data.edges) > 0
