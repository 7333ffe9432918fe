"""The shipped model's outputs are pinned: speed work on the policy must not change them.

``tests/fixtures/default_model_reference.npz`` holds 40 observations of one OnlineBoutique
episode with topology changes (flash trace, 300 req/s, "churn": a service added, two
removed), their slot names, and what the shipped model (gnnrl/assets/models/default)
produced for them. First recorded before the policy's speed work, which this test then held
to atol 1e-5; re-recorded when a new model was shipped (the headroom-DAgger model; then the
same recipe retrained on the one observation builder, which shows TCP-level calls without
request numbers, as a mesh does; then the generalist of observation schema v2, trained
across apps with a dial):

* the per-step move probabilities, value and post-step TGN memory of the sequential
  (memory-carrying) forward pass, as the scaler and evaluation run it;
* the deterministic actions of ``PPO_GNN.act``;
* a batched forward pass of 8 of those observations at once, with stored pre-step memory
  (the PPO update's path), and the joint log-probability / entropy of fixed actions.

Re-record (only when the model or the observation schema changes on purpose)::

    python tests/test_agents_default_model_outputs.py --record
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from gnnrl.core.agents.gnnrl_policy import DEFAULT_MODEL_DIR
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import TENSOR_KEYS, obs_to_tensors

FIXTURE = Path(__file__).parent / "fixtures" / "default_model_reference.npz"
STEPS = 40
ATOL = 1e-5
#: steps of the episode whose observations form the batched case
BATCH_STEPS = [0, 3, 9, 10, 17, 24, 31, 39]


def _sequential(model: PPO_GNN, obs_seq: dict[str, np.ndarray], names: list[list]):
    """Probabilities, values, post-step memory and act() moves of the episode, in order."""
    bank = model.new_memory(1)
    probs, values, memory, last, pre_mem, pre_last, pre_t = [], [], [], [], [], [], []
    model.reset_memory()
    acts = []
    for k in range(obs_seq["svc_df"].shape[0]):
        obs = {key: obs_seq[key][k] for key in TENSOR_KEYS}
        bank.update_node_mapping(names[k])
        t, _ = obs_to_tensors(obs)
        state = bank.state()
        pre_mem.append(state[0][0].numpy())
        pre_last.append(state[1][0].numpy())
        pre_t.append(state[2][0].item())
        with torch.no_grad():
            logits, value, new = model(t, state)
        bank.commit(new[0], new[1], state[2])
        probs.append(torch.softmax(logits[0], -1).numpy())
        values.append(value[0].item())
        memory.append(new[0][0].numpy())
        last.append(new[1][0].numpy())
        model.update_node_mapping(names[k])
        acts.append(model.act(obs, deterministic=True))
    return {"probs": np.stack(probs), "values": np.asarray(values, np.float32),
            "memory": np.stack(memory), "last": np.stack(last), "acts": np.stack(acts),
            "pre_mem": np.stack(pre_mem), "pre_last": np.stack(pre_last),
            "pre_t": np.asarray(pre_t, np.float32)}


def _batched(model: PPO_GNN, obs_seq: dict[str, np.ndarray], seq: dict[str, np.ndarray]):
    """A batch of 8 steps at once with their stored pre-step memory (PPO update path)."""
    idx = BATCH_STEPS
    t, _ = obs_to_tensors({key: obs_seq[key][idx] for key in TENSOR_KEYS})
    memory = (torch.as_tensor(seq["pre_mem"][idx]), torch.as_tensor(seq["pre_last"][idx]),
              torch.as_tensor(seq["pre_t"][idx]))
    actions = torch.as_tensor(seq["acts"][idx])
    with torch.no_grad():
        logits, value, _ = model(t, memory)
        logp, ent, _ = model.evaluate_actions(t, actions, memory)
    return {"batch_probs": torch.softmax(logits, -1).numpy(), "batch_values": value.numpy(),
            "batch_logp": logp.numpy(), "batch_entropy": ent.numpy()}


def _record() -> None:
    from gnnrl.core.agents.scenario_mix import training_scenarios
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.sim import load_app_spec

    scenario = training_scenarios(load_app_spec("onlineboutique"), ["flash"], [300.0],
                                  ["churn"], STEPS)[0]
    env = OnlineBoutique(scenario=scenario, max_steps=STEPS)
    model = PPO_GNN.load(DEFAULT_MODEL_DIR)
    obs, info = env.reset(seed=1001)
    model.reset_memory()
    rows, names = [], []
    for _ in range(STEPS):
        rows.append({k: np.asarray(obs[k]) for k in TENSOR_KEYS})
        names.append(list(info["slot_names"]))
        model.update_node_mapping(names[-1])
        obs, _, terminated, truncated, info = env.step(model.act(obs, deterministic=True))
        if terminated or truncated:
            break
    obs_seq = {k: np.stack([r[k] for r in rows]) for k in TENSOR_KEYS}
    seq = _sequential(model, obs_seq, names)
    out = {f"obs_{k}": v for k, v in obs_seq.items()}
    out["names"] = np.asarray([[n or "" for n in row] for row in names])
    out.update(seq)
    out.update(_batched(model, obs_seq, seq))
    np.savez_compressed(FIXTURE, **out)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes, {len(rows)} steps)")


def _load() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[list]]:
    ref = dict(np.load(FIXTURE))
    obs_seq = {k: ref[f"obs_{k}"] for k in TENSOR_KEYS}
    names = [[n or None for n in row] for row in ref["names"].tolist()]
    return ref, obs_seq, names


def test_shipped_model_gives_the_recorded_probabilities_values_and_memory_step_by_step():
    ref, obs_seq, names = _load()
    model = PPO_GNN.load(DEFAULT_MODEL_DIR)
    got = _sequential(model, obs_seq, names)
    assert got["probs"].shape == (STEPS, 20, 15)
    for key in ("probs", "values", "memory", "last"):
        np.testing.assert_allclose(got[key], ref[key], atol=ATOL, rtol=0, err_msg=key)


def test_shipped_model_acts_exactly_as_recorded():
    ref, obs_seq, names = _load()
    got = _sequential(PPO_GNN.load(DEFAULT_MODEL_DIR), obs_seq, names)
    np.testing.assert_array_equal(got["acts"], ref["acts"])
    # the recorded episode moved replicas and saw services come and go
    assert (ref["acts"] != 0).any()
    assert len({tuple(row) for row in ref["names"].tolist()}) > 1


def test_shipped_model_batched_update_path_matches_the_recording():
    ref, obs_seq, _ = _load()
    got = _batched(PPO_GNN.load(DEFAULT_MODEL_DIR), obs_seq, ref)
    for key, value in got.items():
        np.testing.assert_allclose(value, ref[key], atol=ATOL, rtol=0, err_msg=key)


def test_shipped_model_on_a_minibatch_sized_batch_gives_the_step_by_step_results():
    # 40 observations at once take the large-batch encoder (ppo_gnn.DENSE_MAX_BATCH), the
    # path of the PPO update; the recording was made one observation at a time
    from gnnrl.core.agents.ppo_gnn import DENSE_MAX_BATCH

    ref, obs_seq, _ = _load()
    assert STEPS > DENSE_MAX_BATCH
    t, _ = obs_to_tensors(obs_seq)
    memory = (torch.as_tensor(ref["pre_mem"]), torch.as_tensor(ref["pre_last"]),
              torch.as_tensor(ref["pre_t"]))
    with torch.no_grad():
        logits, value, new = PPO_GNN.load(DEFAULT_MODEL_DIR)(t, memory)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), ref["probs"], atol=ATOL,
                               rtol=0)
    np.testing.assert_allclose(value.numpy(), ref["values"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(new[0].numpy(), ref["memory"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(new[1].numpy(), ref["last"], atol=ATOL, rtol=0)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    _record()
