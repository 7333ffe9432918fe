"""OnlineBoutique(k8s=True) against a fake Kiali and an HTTP-level fake Kubernetes API.

No real API server runs in CI: `FakeKubernetes` answers the official client's requests.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from gnnrl.contracts.observation import NODE_DIM_RAW
from gnnrl.core.envs import NUM_MOVES, OnlineBoutique
from gnnrl.core.envs.cluster_view import view_from_snapshot
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
    assert obs["svc_df"].shape == (20, NODE_DIM_RAW) and obs["edge_mask"].sum() >= 14
    front = info["slot_names"].index("frontend")
    assert obs["svc_df"][front, 0] == 2 and obs["svc_df"][front, 2] == pytest.approx(120)
    assert info["entry_rps"] > 0 and info["e2e_p95_ms"] > 0
    assert env.observation_space["svc_df"].contains(obs["svc_df"])


def test_real_cluster_view_fills_limits_and_start_up_from_the_spec_and_outcomes_from_kiali(env):
    """The v2 fields of the env's real-cluster view: the app spec's CPU limit and start-up
    time per service; the unserved share and the end-to-end p95 from Kiali's edges, the
    calls into frontend from outside the app (ingress gateway 100 req/s no errors p95 48
    ms, unknown 20 req/s 5 % 52 ms, loadgenerator 30 req/s 2 % 45 ms) included."""
    env, _ = env
    view = view_from_snapshot(env.backend.observe(), env.app)
    spec = [env.app.services[s] for s in view.services]
    assert view.cpu_limit_m.tolist() == [s.cpu_limit_m for s in spec]
    assert view.startup_s.tolist() == [s.startup_s for s in spec]
    unserved = dict(zip(view.services, view.unserved.tolist(), strict=True))
    assert unserved["frontend"] == pytest.approx((0.05 * 20 + 0.02 * 30) / 150)
    assert view.e2e_p95_ms == 52.0


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
