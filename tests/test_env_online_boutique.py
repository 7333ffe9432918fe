"""The Gymnasium env: contract, masks, moves applied together, dynamic topology."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from gnnrl.contracts.observation import GLOBAL_DIM_RAW, NODE_DIM_RAW
from gnnrl.core.envs import (
    ENV_ID,
    NUM_MOVES,
    DynamicGraphConfig,
    DynamicGraphSpace,
    OnlineBoutique,
    TooManyServicesError,
)
from gnnrl.sim import Scenario, TopologyEvent
from gnnrl.sim.onlineboutique import reviewservice


def topology_scenario():
    svc, calls = reviewservice()
    return Scenario("add-remove", "diurnal", 100.0, (
        TopologyEvent(step=3, kind="add", service=svc, calls=tuple(calls)),
        TopologyEvent(step=5, kind="remove", service_name="adservice"),
    ))


@pytest.mark.parametrize("use_graph", [True, False])
def test_env_passes_gymnasium_check_env(use_graph):
    check_env(OnlineBoutique(use_graph=use_graph, max_steps=20), skip_render_check=True)


def test_observation_has_the_contract_shapes():
    env = OnlineBoutique()
    obs, info = env.reset(seed=0)
    assert obs["svc_df"].shape == (20, NODE_DIM_RAW) and obs["svc_df"].dtype == np.float32
    assert obs["edge_df"].shape == (400, 7)
    assert obs["global_feats"].shape == (GLOBAL_DIM_RAW,)
    assert obs["invalid_action_mask"].shape == (20 * NUM_MOVES,)
    assert obs["num_nodes"] == 11 == obs["node_mask"].sum()
    assert obs["edge_mask"].sum() == 15  # service edges; the client edge is the entry load
    assert env.action_space.nvec.tolist() == [15] * 20
    slot = info["slot_names"].index("frontend")
    assert obs["svc_df"][slot, 4] == pytest.approx(info["entry_rps"], rel=1e-5)


def test_every_active_service_move_is_applied_in_the_same_step():
    env = OnlineBoutique(max_steps=10)
    _, info = env.reset(seed=1)
    before = info["replicas"].copy()
    action = np.zeros(20, dtype=np.int64)
    names = info["slot_names"]
    for slot, name in enumerate(names):
        if name and name != "redis-cart":
            action[slot] = 2  # +2 each
    _, _, _, _, info = env.step(action)
    for slot, name in enumerate(names):
        if name and name != "redis-cart":
            assert info["replicas"][slot] == before[slot] + 2, name
    assert info["invalid_actions"] == 0


def test_masks_forbid_moves_past_bounds_and_on_empty_slots():
    env = OnlineBoutique()
    obs, info = env.reset(seed=0)
    invalid = obs["invalid_action_mask"].reshape(20, NUM_MOVES).astype(bool)
    valid = env.action_masks().reshape(20, NUM_MOVES)
    assert np.array_equal(valid, ~invalid)
    for slot, name in enumerate(info["slot_names"]):
        cur, lo, hi = info["replicas"][slot], info["min_replicas"][slot], info["max_replicas"][slot]
        if name is None:
            assert valid[slot].tolist() == [True] + [False] * 14
            continue
        for move in range(15):
            delta = move if move <= 7 else 7 - move
            ok = move == 0 or lo <= cur + delta <= hi
            assert valid[slot, move] == ok, (name, move)


def test_masked_action_is_a_counted_noop_not_a_crash():
    env = OnlineBoutique()
    _, info = env.reset(seed=0)
    empty = info["slot_names"].index(None)
    redis = info["slot_names"].index("redis-cart")  # min = max = 1
    action = np.zeros(20, dtype=np.int64)
    action[empty] = 3
    action[redis] = 1
    _, _, _, _, info2 = env.step(action)
    assert info2["invalid_actions"] == 2
    assert info2["replicas"][redis] == 1


def test_slots_are_stable_when_services_come_and_go():
    env = OnlineBoutique(scenario=topology_scenario(), max_steps=8)
    _, info = env.reset(seed=0)
    first = {n: s for s, n in enumerate(info["slot_names"]) if n}
    seen_events = []
    for _ in range(6):
        obs, _, _, _, info = env.step(np.zeros(20, dtype=np.int64))
        seen_events += info["topology_events"]
        now = {n: s for s, n in enumerate(info["slot_names"]) if n}
        for name, slot in now.items():
            if name in first:
                assert first[name] == slot, f"{name} moved"
    assert seen_events == ["add reviewservice", "remove adservice"]
    assert "reviewservice" in now and "adservice" not in now
    assert obs["num_nodes"] == 11
    review = now["reviewservice"]
    src = obs["edge_df"][obs["edge_mask"] == 1][:, :2]
    assert any((row == [now["productcatalogservice"], review]).all() for row in src)


def test_freed_slot_is_reused_by_the_next_new_service():
    space = DynamicGraphSpace(DynamicGraphConfig(max_nodes=3, max_edges=9))
    space.update_node_mapping(["a", "b", "c"])
    space.update_node_mapping(["a", "c"])
    space.update_node_mapping(["a", "c", "d"])
    assert space.node_mapping == {"a": 0, "c": 2, "d": 1}


def test_more_services_than_max_nodes_is_a_clear_error_unless_configured():
    space = DynamicGraphSpace(DynamicGraphConfig(max_nodes=2, max_edges=4))
    with pytest.raises(TooManyServicesError, match="max_nodes=2"):
        space.update_node_mapping(["a", "b", "c"])
    lenient = DynamicGraphSpace(DynamicGraphConfig(max_nodes=2, max_edges=4,
                                                   overflow="ignore_new"))
    with pytest.warns(UserWarning, match="left out"):
        lenient.update_node_mapping(["a", "b", "c"])
    assert lenient.overflowed == {"c"} and set(lenient.node_mapping) == {"a", "b"}


def test_pad_features_place_rows_at_their_service_slots():
    space = DynamicGraphSpace(DynamicGraphConfig(max_nodes=4, max_edges=16))
    space.update_node_mapping(["x", "y"])
    feats, mask = space.pad_node_features(np.ones((2, 6)) * [[1], [2]], names=["y", "x"])
    assert mask.tolist() == [1, 1, 0, 0]
    assert feats[space.node_mapping["y"], 0] == 1 and feats[space.node_mapping["x"], 0] == 2
    edges, emask = space.pad_edge_features(np.array([[0, 1, 1, 5, 10, 0, 1]]))
    assert emask.sum() == 1 and edges[emask == 1][0, 3] == 5


def test_same_seed_same_episode():
    def run(seed):
        env = OnlineBoutique(max_steps=30)
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(30):
            a = np.where(env.action_masks().reshape(20, 15), rng.random((20, 15)), -1).argmax(1)
            _, r, _, _, info = env.step(a)
            out.append((r, info["e2e_p95_ms"]))
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_episode_truncates_at_max_steps():
    env = OnlineBoutique(max_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(20, dtype=np.int64))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_gymnasium_make_and_vector_env_work():
    env = gym.make(ENV_ID, max_steps=5)
    env.reset(seed=0)
    venv = gym.vector.SyncVectorEnv([lambda: OnlineBoutique(max_steps=5) for _ in range(3)])
    obs, _ = venv.reset(seed=0)
    assert obs["svc_df"].shape == (3, 20, NODE_DIM_RAW)
    obs, r, _, _, _ = venv.step(np.zeros((3, 20), dtype=np.int64))
    assert r.shape == (3,)


def test_flat_observation_refuses_topology_changes():
    with pytest.raises(ValueError, match="topology"):
        OnlineBoutique(use_graph=False, scenario=topology_scenario())


def test_reward_punishes_slo_violation_and_cost():
    env = OnlineBoutique(max_steps=3, peak_rps=400.0, trace="constant")
    _, info = env.reset(seed=0)
    # remove as many replicas as allowed everywhere: overload -> violation
    a = np.where(env.action_masks().reshape(20, 15)[:, 14], 14, 0)
    _, r_low, _, _, info = env.step(a)
    assert info["slo_violated"]
    env2 = OnlineBoutique(max_steps=3, peak_rps=20.0, trace="constant")
    env2.reset(seed=0)
    _, r_ok, _, _, info2 = env2.step(np.zeros(20, dtype=np.int64))
    assert not info2["slo_violated"]
    assert r_ok > r_low
