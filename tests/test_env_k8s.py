"""OnlineBoutique(k8s=True) against a fake Kiali and an HTTP-level fake Kubernetes API.

No real API server runs in CI: `FakeKubernetes` answers the official client's requests.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from gnnrl.core.envs import NUM_MOVES, OnlineBoutique
from gnnrl.core.envs.k8s_backend import K8sBackend
from gnnrl.sources.kiali import KialiClient
from gnnrl.sources.kubernetes import KubernetesSource
from gnnrl.testing.k8s_fake import FakeKubernetes
from gnnrl.testing.kiali_fake import FakeKiali

NS = "onlineboutique"
FIXTURE = Path(__file__).parent / "fixtures" / "kiali" / "onlineboutique_workload_graph.json"


@pytest.fixture
def env():
    with FakeKubernetes() as kube, FakeKiali() as kiali:
        app = OnlineBoutique(max_steps=3).app
        for name in [*app.services, "loadgenerator"]:
            kube.add_deployment(name, NS, 2 if name == "frontend" else 1)
            kube.set_usage(name, NS, cpu_m_per_pod=60, mem_mi_per_pod=40)
        kiali.set_graph(NS, json.loads(FIXTURE.read_text()))
        backend = K8sBackend(NS, KialiClient(kiali.url, retries=0, backoff_s=0,
                                             backoff_jitter_s=0),
                             KubernetesSource(kube.api_client(), namespace=NS),
                             waiting_period_s=0, sleep=lambda s: None)
        yield OnlineBoutique(k8s=True, backend=backend, max_steps=3), kube


def test_real_cluster_env_observes_the_same_contract(env):
    env, _ = env
    obs, info = env.reset(seed=0)
    assert obs["num_nodes"] == 11  # loadgenerator is a client, not a scaled service
    assert obs["svc_df"].shape == (20, 6) and obs["edge_mask"].sum() >= 14
    front = info["slot_names"].index("frontend")
    assert obs["svc_df"][front, 0] == 2 and obs["svc_df"][front, 2] == pytest.approx(120)
    assert info["entry_rps"] > 0 and info["e2e_p95_ms"] > 0
    assert env.observation_space["svc_df"].contains(obs["svc_df"])


def test_real_cluster_env_scales_through_the_scale_subresource(env):
    env, kube = env
    _, info = env.reset(seed=0)
    action = np.zeros(20, dtype=np.int64)
    action[info["slot_names"].index("cartservice")] = 2  # +2
    valid = env.action_masks().reshape(20, NUM_MOVES)
    assert valid[info["slot_names"].index("cartservice"), 2]
    _, r, _, _, info = env.step(action)
    assert kube.scale_writes() == [(NS, "cartservice", 3)]
    assert np.isfinite(r) and info["replicas"][info["slot_names"].index("cartservice")] == 3


def test_k8s_env_without_a_backend_says_what_to_pass():
    with pytest.raises(ValueError, match="K8sBackend"):
        OnlineBoutique(k8s=True)
