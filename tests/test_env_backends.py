"""The env's two backends behind one interface: the simulator and a real cluster (here
the HTTP-level fake Kubernetes API and a fake Kiali) take the same scale moves the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gnnrl.core.envs import OnlineBoutique
from gnnrl.core.envs.backend import Backend, EpisodeSettings
from gnnrl.core.envs.cluster_backend import ClusterBackend
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphConfig, DynamicGraphSpace
from gnnrl.core.envs.k8s_backend import K8sBackend
from gnnrl.core.envs.obs_extras import LoadHistory
from gnnrl.core.envs.sim_backend import SimBackend
from gnnrl.sim import Scenario, SimConfig, load_app_spec
from gnnrl.sources.kiali import KialiClient
from gnnrl.sources.kubernetes import KubernetesSource

NS = "onlineboutique"
FIXTURE = Path(__file__).parent / "fixtures" / "kiali" / "onlineboutique_workload_graph.json"
APP = load_app_spec("onlineboutique")

#: a scripted episode: per step, service -> move (1..7 add, 8..14 remove 1..7 replicas).
#: The last step asks frontend for 7 fewer pods, below its min_replicas: an invalid move
#: that both backends execute as "nothing".
SCRIPT = [
    {"cartservice": 2, "frontend": 1},
    {"cartservice": 8, "adservice": 3, "currencyservice": 1},
    {"frontend": 14, "emailservice": 1},
    {},
]


def _shared_parts() -> tuple[DynamicGraphSpace, LoadHistory, EpisodeSettings]:
    settings = EpisodeSettings(slo_p95_ms=APP.slo_p95_ms, interval_s=15.0, dial_setting=0.5,
                               tod_setting=0.0, dial=0.5, tod0_s=0.0)
    return DynamicGraphSpace(DynamicGraphConfig()), LoadHistory(), settings


def _start(backend: Backend, space: DynamicGraphSpace) -> dict:
    space.reset()
    backend.reset(np.random.default_rng(0))
    return backend.observe_state(0)[1]


def _step(backend: Backend, moves: dict[str, int], info: dict, t: int) -> dict:
    """One control interval of the `Backend` protocol, as the env runs it."""
    action = np.zeros(len(info["slot_names"]), dtype=np.int64)
    for name, move in moves.items():
        action[info["slot_names"].index(name)] = move
    scaled = backend.apply_scale(action, t)
    backend.advance(t)
    _, info = backend.observe_state(t)
    return info | scaled


def _replicas(info: dict) -> dict[str, int]:
    return {name: int(info["replicas"][slot])
            for slot, name in enumerate(info["slot_names"]) if name is not None}


@pytest.fixture
def simulator() -> tuple[SimBackend, DynamicGraphSpace]:
    space, history, settings = _shared_parts()
    sim = SimBackend(APP, [Scenario("steady", "diurnal", 100.0)], None, SimConfig(), space,
                     history, settings, hpa_target=0.7, max_steps=len(SCRIPT))
    return sim, space


def _cluster(kube, kiali, replicas: dict[str, int]) -> tuple[ClusterBackend, DynamicGraphSpace]:
    for name in [*APP.services, "loadgenerator"]:
        kube.add_deployment(name, NS, replicas.get(name, 1))
        kube.set_usage(name, NS, cpu_m_per_pod=60, mem_mi_per_pod=40)
    kiali.set_graph(NS, json.loads(FIXTURE.read_text()))
    io = K8sBackend(NS, KialiClient(kiali.url, retries=0, backoff_s=0, backoff_jitter_s=0),
                    KubernetesSource(kube.api_client(), namespace=NS),
                    waiting_period_s=0, sleep=lambda s: None)
    space, history, settings = _shared_parts()
    return ClusterBackend(io, APP, space, history, settings, hpa_target=0.7), space


def test_both_backends_satisfy_the_backend_interface(simulator, kube, kiali):
    cluster, _ = _cluster(kube, kiali, {})
    assert isinstance(simulator[0], Backend)
    assert isinstance(cluster, Backend)


def test_the_same_scale_moves_give_the_same_replicas_in_the_simulator_and_on_the_cluster(
        simulator, kube, kiali):
    sim, sim_space = simulator
    sim_info = _start(sim, sim_space)
    # the cluster starts where the simulator's warm start put every service
    cluster, cluster_space = _cluster(kube, kiali, _replicas(sim_info))
    cluster_info = _start(cluster, cluster_space)
    assert _replicas(cluster_info) == _replicas(sim_info)

    start = _replicas(sim_info)
    invalid = []
    for t, moves in enumerate(SCRIPT, start=1):
        sim_info = _step(sim, moves, sim_info, t)
        cluster_info = _step(cluster, moves, cluster_info, t)
        assert _replicas(cluster_info) == _replicas(sim_info), f"step {t}"
        assert cluster_info["invalid_actions"] == sim_info["invalid_actions"], f"step {t}"
        invalid.append(sim_info["invalid_actions"])
    assert invalid == [0, 0, 1, 0]
    changed = {name: n - start[name] for name, n in _replicas(sim_info).items()
               if n != start[name]}
    assert changed == {"cartservice": 1, "frontend": 1, "adservice": 3, "currencyservice": 1,
                       "emailservice": 1}
    # and the cluster's Deployments hold those counts
    assert {name: kube.replicas(name, NS) for name in APP.services} == _replicas(sim_info)


def test_an_invalid_move_is_nothing_on_both_backends(simulator, kube, kiali):
    sim, sim_space = simulator
    sim_info = _start(sim, sim_space)
    cluster, cluster_space = _cluster(kube, kiali, _replicas(sim_info))
    cluster_info = _start(cluster, cluster_space)
    below_min = {"frontend": 14}                      # -7 pods: below min_replicas
    sim_after = _step(sim, below_min, sim_info, 1)
    cluster_after = _step(cluster, below_min, cluster_info, 1)
    assert sim_after["invalid_actions"] == cluster_after["invalid_actions"] == 1
    assert _replicas(sim_after) == _replicas(cluster_after) == _replicas(sim_info)
    assert kube.scale_writes() == []


@pytest.mark.parametrize("k8s", [False, True])
def test_the_env_picks_its_backend_once_when_built(k8s, kube, kiali):
    backend = _cluster(kube, kiali, {})[0].cluster if k8s else None
    env = OnlineBoutique(k8s=k8s, backend=backend, max_steps=2)
    assert isinstance(env.env_backend, ClusterBackend if k8s else SimBackend)
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(np.zeros(env.action_space.shape, dtype=np.int64))
    assert info["scenario"] == ("k8s" if k8s else "diurnal") and not truncated
    assert (env.sim is None) == k8s
