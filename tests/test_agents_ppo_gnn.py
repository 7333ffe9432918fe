"""PPO_GNN: masking, act shapes, persistence (weights_only, schema version, corruption)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gnnrl.config import ConfigError
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig, TGNConfig
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy
from gnnrl.core.agents.ppo_gnn import PPO_GNN, ModelLoadError, ObservationSchemaError
from gnnrl.encoders.graph_batch import ObservationError, obs_to_tensors
from gnnrl.testing.observation import make_observation, stack_observations

NODES = [[2, 3, 150, 100, 50, 80], [1, 1, 40, 60, 30, 0], [3, 2, 200, 120, 80, 40]]
EDGES = [(0, 1, 30, 20, 0.0, 1.0), (0, 2, 50, 40, 0.01, 1.0)]
CFG = PolicyConfig(max_nodes=5, max_edges=6, hidden_dim=16)


def _model(use_tgn=True, seed=0) -> PPO_GNN:
    torch.manual_seed(seed)
    return PPO_GNN(use_tgn=use_tgn, config=CFG).eval()


def test_masked_moves_get_zero_probability_and_are_never_sampled():
    invalid = np.zeros((3, 15), bool)
    invalid[0, 8:] = True  # service 0 at min replicas: no removals
    invalid[1, 1:8] = True  # service 1 at max: no additions
    invalid[2, 1:] = True  # service 2: only "nothing"
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6, invalid=invalid)
    model = _model()
    t, _ = obs_to_tensors(obs)
    with torch.no_grad():
        logits, _, _ = model(t, None)
    probs = torch.softmax(logits[0], -1)
    assert probs[:3][torch.as_tensor(invalid)].abs().max() == 0.0
    batch = stack_observations([obs] * 64)
    actions = model.act(batch)
    assert actions.shape == (64, 5)
    for s in range(3):
        assert not invalid[s, actions[:, s]].any()
    assert (actions[:, 3:] == 0).all()  # padded slots only "nothing"


def test_log_prob_and_entropy_sum_over_active_services_only():
    model = _model()
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6)
    t, _ = obs_to_tensors(obs)
    actions = torch.tensor([[1, 0, 9, 0, 0]])
    logp, ent, _ = model.evaluate_actions(t, actions, None)
    logits, _, _ = model(t, None)
    lp = torch.log_softmax(logits[0], -1)
    expected = lp[0, 1] + lp[1, 0] + lp[2, 9]
    torch.testing.assert_close(logp[0], expected)
    per_node = -(lp.exp() * lp).sum(-1)
    torch.testing.assert_close(ent[0], per_node[:3].sum())


def test_act_returns_one_move_per_slot_for_single_and_batched_observations():
    model = _model()
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6)
    single = model.act(obs, deterministic=True)
    assert single.shape == (5,) and single.dtype == np.int64
    batched = model.act(stack_observations([obs, obs]), deterministic=True)
    assert batched.shape == (2, 5)


def test_act_refuses_observation_with_nan():
    model = _model()
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6)
    obs["svc_df"][1, 2] = np.nan
    with pytest.raises(ObservationError, match="svc_df"):
        model.act(obs)


@pytest.mark.parametrize("use_tgn", [False, True])
def test_save_load_round_trip_gives_identical_actions(tmp_path, use_tgn):
    model = _model(use_tgn)
    obs = [make_observation(NODES, EDGES, max_nodes=5, max_edges=6),
           make_observation(NODES[:2], EDGES[:1], max_nodes=5, max_edges=6)]
    model.save(tmp_path / "m")
    loaded = PPO_GNN.load(tmp_path / "m")
    assert loaded.config == model.config
    model.reset_memory()
    for o in obs * 3:  # several steps, so the memory matters
        torch.manual_seed(7)
        a = model.act(o)
        torch.manual_seed(7)
        b = loaded.act(o)
        assert np.array_equal(a, b)
        assert np.array_equal(model.act(o, deterministic=True),
                              loaded.act(o, deterministic=True))


def test_load_refuses_a_model_of_another_observation_schema(tmp_path):
    _model().save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["observation_schema_version"] += 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ObservationSchemaError, match="observation schema"):
        PPO_GNN.load(tmp_path / "m")


def test_load_detects_corrupt_weights(tmp_path):
    _model().save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        PPO_GNN.load(tmp_path / "m")


def test_load_of_a_missing_folder_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError):
        PPO_GNN.load(tmp_path / "nothing-here")


def test_weights_file_is_a_plain_state_dict_loadable_with_weights_only(tmp_path):
    _model().save(tmp_path / "m")
    state = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_policy_adapter_remaps_memory_by_service_name():
    model = _model()
    policy = GNNRLPolicy(model)
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6)
    policy.reset(None)
    policy.act(obs, {"slot_names": ["a", "b", "c", None, None]})
    mem_c = model._bank.memory[0, 2].clone()
    assert mem_c.abs().sum() > 0
    moved = make_observation(NODES, EDGES, slots=[0, 1, 4], max_nodes=5, max_edges=6)
    model_bank = model._bank
    policy.act(moved, {"slot_names": ["a", "b", None, None, "c"]})
    assert model_bank.last_update[0, 4] == 2.0  # "c" kept its history and got an event
    assert model_bank.memory[0, 2].abs().sum() == 0


def test_action_space_must_match_the_contract():
    import gymnasium as gym

    with pytest.raises(ConfigError, match="MultiDiscrete"):
        PPO_GNN(action_space=gym.spaces.MultiDiscrete([10] * 20))


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (PolicyConfig, {"hidden_dim": 15}, "hidden_dim"),
        (PolicyConfig, {"num_moves": 10}, "num_moves"),
        (PolicyConfig, {"gnn_layers": 0}, "gnn_layers"),
        (TGNConfig, {"memory_dim": 0}, "memory_dim"),
        (PPOConfig, {"gamma": 1.5}, "gamma"),
        (PPOConfig, {"num_minibatches": 7}, "num_minibatches"),
        (PPOConfig, {"clip_coef": -0.1}, "clip_coef"),
        (PPOConfig, {"target_kl": 0.0}, "target_kl"),
    ],
)
def test_invalid_config_names_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


def test_policy_config_round_trips_through_json():
    cfg = PolicyConfig(hidden_dim=32, tgn=TGNConfig(memory_dim=16))
    assert PolicyConfig.from_json(cfg.to_json()) == cfg


def test_hold_margin_turns_borderline_moves_into_holds_when_serving(tmp_path):
    model = PPO_GNN(use_tgn=False, config=CFG.replace(hold_margin=1.0)).eval()
    logits = torch.full((1, 3, 15), -5.0)
    logits[0, 0, 0], logits[0, 0, 1] = 0.0, 0.5   # +1 beats hold by 0.5: held
    logits[0, 1, 0], logits[0, 1, 8] = 0.0, 2.0   # -1 beats hold by 2.0: moves
    logits[0, 2, 3] = 9.0                         # padded slot: always holds
    mask = torch.tensor([[True, True, False]])
    assert model.decide(logits, mask).tolist() == [[0, 8, 0]]
    plain = PPO_GNN(use_tgn=False, config=CFG).eval()
    assert plain.decide(logits, mask).tolist() == [[1, 8, 0]]
    # the margin is part of the saved model, so the scaler serves with it
    model.save(tmp_path / "m")
    assert PPO_GNN.load(tmp_path / "m").config.hold_margin == 1.0


def test_a_removal_needs_the_larger_down_margin_an_addition_only_the_hold_margin(tmp_path):
    model = PPO_GNN(use_tgn=False, config=CFG.replace(hold_margin=1.0,
                                                      hold_margin_down=2.5)).eval()
    logits = torch.full((1, 4, 15), -5.0)
    logits[0, :, 0] = 0.0
    logits[0, 0, 2] = 1.5    # +2 beats hold by 1.5 > 1.0: moves
    logits[0, 1, 9] = 1.5    # -2 beats hold by 1.5 < 2.5: held
    logits[0, 2, 9] = 3.0    # -2 beats hold by 3.0 > 2.5: moves
    logits[0, 3, 1] = 0.5    # +1 by 0.5 < 1.0: held
    mask = torch.ones(1, 4, dtype=torch.bool)
    assert model.decide(logits, mask).tolist() == [[2, 0, 9, 0]]
    symmetric = PPO_GNN(use_tgn=False, config=CFG.replace(hold_margin=1.0)).eval()
    assert symmetric.decide(logits, mask).tolist() == [[2, 9, 9, 0]]
    model.save(tmp_path / "m")
    assert PPO_GNN.load(tmp_path / "m").config.hold_margin_down == 2.5


def test_hold_margin_must_be_a_finite_non_negative_number():
    with pytest.raises(ConfigError, match="hold_margin"):
        CFG.replace(hold_margin=-0.5)
    with pytest.raises(ConfigError, match="hold_margin_down"):
        CFG.replace(hold_margin_down=float("inf"))


def test_decisions_follow_weight_updates_made_after_earlier_decisions():
    # decisions cache weight-derived tensors; an optimizer step or a state_dict load must
    # show in the next decision exactly as in a freshly built model
    model, fresh = _model(seed=0), _model(seed=1)
    obs = make_observation(NODES, EDGES, max_nodes=5, max_edges=6)
    t, _ = obs_to_tensors(obs)

    def logits(m):
        with torch.inference_mode():
            return m(t, None)[0]

    logits(model)  # fills the caches
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(logits(model), logits(fresh), rtol=0, atol=0)
    model.load_state_dict(_model(seed=2).state_dict())
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(logits(model), logits(fresh), rtol=0, atol=0)
