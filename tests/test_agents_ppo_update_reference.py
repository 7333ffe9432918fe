"""The PPO update is pinned: speed work on the update must give the same numbers.

``tests/fixtures/ppo_update_reference.npz`` holds a small rollout of the shipped model
(4 OnlineBoutique envs x 12 steps, flash/ramp traces with services added and removed,
sampled moves, stored pre-step TGN memory; old log-probabilities perturbed so that some
ratios are clipped) and what the code of commit f8ebef8, *before* the per-update
precomputation, the 16-wide log-softmax, the exp-free masked entropy and the split actor
layer, computed from it with the shipped weights:

* log-probabilities, entropies and values of the 48 samples (the large-batch encoder) and
  of the first 16 (the small-batch one);
* the PPO loss of the 48 samples as one minibatch and its gradient for every parameter;
* whole updates (`ppo_update`, 2 epochs): the parameters after 1 minibatch of 48 per
  epoch, and the statistics after 2 minibatches of 24 per epoch.

Tolerance: relative 1e-5 (absolute 1e-6 for values near 0). The new code is not bitwise
equal: the split first layer of the actor adds two partial products instead of one, and a
16-wide log-softmax reduces in a different order; both move results in the last float32
bits (~1e-7 relative). Adam steps of lr 3e-4 keep parameter differences ~1e-9.

Re-record (only when the shipped model changes on purpose; uses the current code)::

    python tests/test_agents_ppo_update_reference.py --record
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrl.core.agents.configs import PPOConfig
from gnnrl.core.agents.gnnrl_policy import DEFAULT_MODEL_DIR
from gnnrl.core.agents.ppo import Batch, minibatch_loss, ppo_update
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.graph_batch import TENSOR_KEYS

FIXTURE = Path(__file__).parent / "fixtures" / "ppo_update_reference.npz"
ENVS, STEPS, MAX_EDGES = 4, 12, 400
RTOL, ATOL = 1e-5, 1e-6
#: the fixture keeps the first edge rows only (the others are unused zeros)
STORED_EDGES = 24


def _load() -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    data = np.load(FIXTURE)
    rollout = {k.split("/", 1)[1]: torch.as_tensor(data[k]) for k in data.files
               if k.startswith("rollout/")}
    for key in ("obs_edge_df", "obs_edge_mask"):
        v = rollout[key]
        pad = torch.zeros(v.shape[0], MAX_EDGES - v.shape[1], *v.shape[2:], dtype=v.dtype)
        rollout[key] = torch.cat([v, pad], 1)
    ref = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("ref/")}
    return rollout, ref


def _batch(r: dict[str, torch.Tensor], idx: torch.Tensor | None = None) -> Batch:
    idx = torch.arange(r["actions"].shape[0]) if idx is None else idx
    obs = {k: r[f"obs_{k}"][idx] for k in TENSOR_KEYS}
    return Batch(obs, (r["memory"][idx], r["last"][idx], r["time"][idx]), r["actions"][idx],
                 r["logp"][idx], r["values"][idx], r["advantages"][idx], r["returns"][idx])


def _loss_and_grads(model: PPO_GNN, b: Batch, cfg: PPOConfig):
    model.train()
    prepared = model.prepare_update(b.obs, b.memory, b.actions)
    adv = (b.advantages - b.advantages.mean()) / (b.advantages.std() + 1e-8)
    loss, _ = minibatch_loss(model, prepared, b.logp, b.values, adv, b.returns, cfg,
                             total=len(b))
    loss.backward()
    return loss.detach(), {k: p.grad.detach().clone() for k, p in model.named_parameters()
                           if p.grad is not None}


def _updates(rollout):
    out = {}
    for name, minibatches in (("update1", 1), ("update2", 2)):
        model = PPO_GNN.load(DEFAULT_MODEL_DIR)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-5)
        cfg = PPOConfig(num_envs=ENVS, num_steps=STEPS, num_minibatches=minibatches,
                        update_epochs=2)
        stats = ppo_update(model, opt, _batch(rollout), cfg, torch.Generator().manual_seed(0))
        out[name] = (model, stats)
    return out


def _close(got, want, what: str) -> None:
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.fixture(scope="module")
def reference():
    return _load()


@pytest.mark.parametrize("name, count", [("full", 48), ("small", 16)])
def test_update_path_gives_the_recorded_log_probs_entropies_and_values(reference, name,
                                                                       count):
    rollout, ref = reference
    model = PPO_GNN.load(DEFAULT_MODEL_DIR)
    b = _batch(rollout, torch.arange(count))
    with torch.no_grad():
        fast = model.evaluate_update(model.prepare_update(b.obs, b.memory, b.actions))
        plain = model.evaluate_actions(b.obs, b.actions, b.memory)
    for path, (logp, ent, value) in (("update", fast), ("evaluate_actions", plain)):
        _close(logp, ref[f"{name}_logp"], f"{path} logp")
        _close(ent, ref[f"{name}_entropy"], f"{path} entropy")
        _close(value, ref[f"{name}_value"], f"{path} value")


def test_ppo_loss_and_every_gradient_match_the_recording(reference):
    rollout, ref = reference
    cfg = PPOConfig(num_envs=ENVS, num_steps=STEPS, num_minibatches=1, update_epochs=1)
    loss, grads = _loss_and_grads(PPO_GNN.load(DEFAULT_MODEL_DIR), _batch(rollout), cfg)
    _close(loss, ref["full_loss"], "loss")
    recorded = {k.split("/", 1)[1] for k in ref if k.startswith("full_grad/")}
    assert recorded == set(grads)
    for key, grad in grads.items():
        want = ref[f"full_grad/{key}"]
        # gradients of tiny magnitude: absolute tolerance relative to the tensor's scale
        atol = max(ATOL * 1e-2, 1e-5 * float(np.abs(want).max()))
        np.testing.assert_allclose(grad.numpy(), want, rtol=RTOL, atol=atol, err_msg=key)


def test_whole_updates_give_the_recorded_parameters_and_statistics(reference):
    rollout, ref = reference
    got = _updates(rollout)
    model, _ = got["update1"]
    for key, p in model.named_parameters():
        _close(p.detach(), ref[f"update1_param/{key}"], key)
    for name, (_, stats) in got.items():
        for key, value in stats.items():
            np.testing.assert_allclose(value, ref[f"{name}_stat/{key}"], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name} {key}")


def _record() -> None:  # pragma: no cover - a maintenance tool
    from gnnrl.core.agents.ppo import compute_gae
    from gnnrl.core.agents.rollout import EnvPool
    from gnnrl.core.agents.scenario_mix import training_scenarios
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.encoders.graph_batch import obs_to_tensors
    from gnnrl.sim import load_app_spec

    torch.set_num_threads(1)
    app = load_app_spec("onlineboutique")
    scen = training_scenarios(app, ["flash", "ramp"], [300.0], ["churn", "add"], STEPS)
    pool = EnvPool([lambda: OnlineBoutique(app=app, scenario=scen, max_steps=STEPS)] * ENVS,
                   run_seed=7)
    model = PPO_GNN.load(DEFAULT_MODEL_DIR)
    torch.manual_seed(5)
    obs, infos = pool.reset()
    bank = model.new_memory(ENVS)
    for i, info in enumerate(infos):
        bank.update_node_mapping(info["slot_names"], i)
    seq: dict[str, list] = {}
    rewards, dones = [], []
    for _ in range(STEPS):
        t, _ = obs_to_tensors(obs)
        mem = bank.state()
        actions, logp, value, new = model.sample(t, mem)
        bank.commit(new[0], new[1], mem[2])
        row = {**{f"obs_{k}": t[k] for k in TENSOR_KEYS}, "memory": mem[0], "last": mem[1],
               "time": mem[2], "actions": actions, "logp": logp, "values": value}
        for key, val in row.items():
            seq.setdefault(key, []).append(val.clone())
        step = pool.step(actions.numpy())
        rewards.append(step.rewards.astype(np.float32))
        dones.append(step.done)
        for i, info in enumerate(step.infos):
            if step.done[i]:
                bank.reset([i])
            bank.update_node_mapping(info["slot_names"], i)
        obs = step.obs
    values = torch.stack(seq["values"]).numpy()
    adv, ret = compute_gae(np.stack(rewards) / 10.0, values, np.stack(dones),
                           np.zeros((STEPS, ENVS), bool), np.zeros((STEPS, ENVS), np.float32),
                           values[-1], 0.99, 0.95)
    rollout = {k: torch.stack(v).reshape(STEPS * ENVS, *v[0].shape[1:]) for k, v in seq.items()}
    gen = torch.Generator().manual_seed(3)  # ratios away from 1: some are clipped
    rollout["logp"] = rollout["logp"] + 0.3 * torch.randn(STEPS * ENVS, generator=gen)
    rollout["advantages"] = torch.as_tensor(adv.reshape(-1))
    rollout["returns"] = torch.as_tensor(ret.reshape(-1))
    out = {}
    for name, count in (("full", 48), ("small", 16)):
        model = PPO_GNN.load(DEFAULT_MODEL_DIR)
        b = _batch(rollout, torch.arange(count))
        with torch.no_grad():
            logp, ent, value = model.evaluate_actions(b.obs, b.actions, b.memory)
        out.update({f"{name}_logp": logp, f"{name}_entropy": ent, f"{name}_value": value})
    cfg = PPOConfig(num_envs=ENVS, num_steps=STEPS, num_minibatches=1, update_epochs=1)
    loss, grads = _loss_and_grads(PPO_GNN.load(DEFAULT_MODEL_DIR), _batch(rollout), cfg)
    out["full_loss"] = loss
    out.update({f"full_grad/{k}": g for k, g in grads.items()})
    for name, (model, stats) in _updates(rollout).items():
        if name == "update1":
            out.update({f"update1_param/{k}": p.detach() for k, p in model.named_parameters()})
        out.update({f"{name}_stat/{k}": torch.tensor(v, dtype=torch.float64)
                    for k, v in stats.items()})
    assert not rollout["obs_edge_mask"][:, STORED_EDGES:].any()
    for key in ("obs_edge_df", "obs_edge_mask"):
        rollout[key] = rollout[key][:, :STORED_EDGES]
    arrays = {f"rollout/{k}": v.numpy() for k, v in rollout.items()}
    arrays.update({f"ref/{k}": torch.as_tensor(v).numpy() for k, v in out.items()})
    np.savez_compressed(FIXTURE, **arrays)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    _record()
