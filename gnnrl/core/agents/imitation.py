"""Warm start by imitation: clone a teacher policy (the HPA rule) before PPO.

PPO from a random per-service policy spends most of a small CPU budget learning what the
HPA formula already knows (scale with CPU pressure). We therefore start from a policy
that imitates a teacher (`gnnrl.baselines.hpa.HPAPolicy` at 70 % CPU) by maximum
likelihood on its moves, with the critic regressed on the teacher's discounted returns,
then let PPO improve on it (the "kickstarting" recipe: Schmitt et al. 2018,
https://arxiv.org/abs/1803.03835; behaviour-cloning initialisation is also how AlphaStar
starts). The teacher's episodes use training seeds (< 1000) and the scenario mix.

The TGN memory is rolled forward along each teacher trajectory exactly as in a PPO
rollout, and the loss recomputes each step's memory update, so the GRU learns here too.

Cloning the teacher's own trajectories alone leaves the student lost in states the teacher
never visits (a pod too many, a scale-down missed): errors compound over an episode
(Ross et al. 2011, "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning", https://arxiv.org/abs/1011.0686). So after the first fit we
run DAgger: the *student* drives the environment (its deterministic moves), the teacher
labels every state it reaches with the move it would make from there, the labelled states
join the data set, and the student is fitted again (`TrainConfig.bc_dagger` iterations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gnnrl.core.agents.ppo import RewardNormalizer
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.core.agents.rollout import EnvPool
from gnnrl.encoders.graph_batch import obs_to_tensors


def collect_teacher(model: PPO_GNN, pool: EnvPool, teacher_factory: Callable[[], Any],
                    normalizer: RewardNormalizer, gamma: float, rounds: int = 1,
                    student_drives: bool = False) -> dict[str, Any]:
    """Run ``rounds`` full episodes in every env of ``pool``, labelled by the teacher.

    With ``student_drives`` the model's deterministic moves are executed (DAgger) and the
    teacher's moves from each visited state are the labels; otherwise the teacher drives.

    Returns stacked tensors: obs ``(M, ...)``, memory ``(M, N, D)`` / ``(M, N)`` / ``(M,)``
    (None without TGN), actions ``(M, N)`` (the teacher's), returns ``(M,)``
    (normalised-reward discounted returns of the executed moves, the critic's target),
    and ``agreement``: the share of active services where the executed and the teacher's
    moves agree.
    """
    device = model.device
    teachers = [teacher_factory() for _ in range(pool.num_envs)]
    rows: dict[str, list] = {"obs": [], "mem": [], "actions": [], "rewards": [], "done": []}
    agree, active_total = 0.0, 0.0
    for _ in range(rounds):
        obs, infos = pool.reset()
        for env, teacher in zip(pool.envs, teachers, strict=True):
            teacher.reset(env)
        bank = model.new_memory(pool.num_envs)
        for i, info in enumerate(infos):
            bank.update_node_mapping(info["slot_names"], i)
        finished = np.zeros(pool.num_envs, bool)
        while not finished.all():
            t, _ = obs_to_tensors(obs, device)
            actions = np.stack([teacher.act({k: v[i] for k, v in obs.items()}, infos[i])
                                for i, teacher in enumerate(teachers)])
            invalid = obs["invalid_action_mask"].reshape(actions.shape[0], actions.shape[1], -1)
            bad = np.take_along_axis(invalid, actions[..., None], -1)[..., 0].astype(bool)
            actions = np.where(bad, 0, actions)
            memory = bank.state() if model.tgn is not None else None
            executed = actions
            if memory is not None or student_drives:
                with torch.no_grad():
                    logits, _, new = model(t, memory)
                if memory is not None:
                    bank.commit(new[0], new[1], memory[2])
                if student_drives:
                    executed = logits.argmax(-1).cpu().numpy()
            live = obs["node_mask"].astype(bool)
            agree += float(((executed == actions) & live).sum())
            active_total += float(live.sum())
            step = pool.step(executed)
            rows["obs"].append(t)
            rows["mem"].append(memory)
            rows["actions"].append(torch.as_tensor(actions, device=device))
            rows["rewards"].append(normalizer(step.rewards, step.done.astype(np.float64)))
            rows["done"].append(step.done)
            for i, info in enumerate(step.infos):
                if step.done[i]:
                    bank.reset([i])
                bank.update_node_mapping(info["slot_names"], i)
            obs, infos = step.obs, step.infos
            finished |= step.done
    rewards = np.stack(rows["rewards"])
    done = np.stack(rows["done"]).astype(np.float64)
    returns = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1])
    for k in reversed(range(rewards.shape[0])):
        running = rewards[k] + gamma * running * (1.0 - done[k])
        returns[k] = running
    obs_cat = {k: torch.cat([o[k] for o in rows["obs"]]) for k in rows["obs"][0]}
    mem = None
    if model.tgn is not None:
        mem = tuple(torch.cat([m[j] for m in rows["mem"]]) for j in range(3))
    return {"obs": obs_cat, "memory": mem, "actions": torch.cat(rows["actions"]),
            "returns": torch.as_tensor(returns.reshape(-1), dtype=torch.float32, device=device),
            "agreement": agree / max(active_total, 1.0)}


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two `collect_teacher` data sets as one (the DAgger aggregate)."""
    out: dict[str, Any] = {
        "obs": {k: torch.cat([a["obs"][k], b["obs"][k]]) for k in a["obs"]},
        "memory": None if a["memory"] is None
        else tuple(torch.cat([x, y]) for x, y in zip(a["memory"], b["memory"], strict=True)),
        "actions": torch.cat([a["actions"], b["actions"]]),
        "returns": torch.cat([a["returns"], b["returns"]]),
        "agreement": b["agreement"],
    }
    return out


def clone(model: PPO_GNN, data: dict[str, Any], epochs: int, minibatch: int, lr: float,
          generator: torch.Generator, move_weight: float = 10.0) -> dict[str, float]:
    """Maximum-likelihood fit of the teacher's moves (+ value regression); mean final losses.

    The policy loss is the negative log-likelihood per active service. The teacher holds
    on the vast majority of (service, step) pairs, and the rare scale moves are the ones
    that matter, so a non-hold target weighs ``move_weight`` times a hold.
    """
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-5)
    size = int(data["actions"].shape[0])
    last: dict[str, list[float]] = {"bc_nll": [], "bc_value_loss": [], "bc_accuracy": [],
                                    "bc_move_recall": []}
    for _ in range(epochs):
        perm = torch.randperm(size, generator=generator).to(data["actions"].device)
        for k in last:
            last[k].clear()
        for start in range(0, size, minibatch):
            idx = perm[start:start + minibatch]
            obs = {k: v[idx] for k, v in data["obs"].items()}
            mem = None if data["memory"] is None else tuple(m[idx] for m in data["memory"])
            actions = data["actions"][idx]
            logits, value, _ = model(obs, mem)
            logp_all = torch.log_softmax(logits, -1)
            active = obs["node_mask"].to(logits.dtype)
            logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            moving = (actions != 0).to(logits.dtype) * active
            weight = active + (move_weight - 1.0) * moving
            nll = -(logp * weight).sum() / weight.sum().clamp_min(1)
            v_loss = 0.5 * ((value - data["returns"][idx]) ** 2).mean()
            loss = nll + v_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            with torch.no_grad():
                hit = ((logits.argmax(-1) == actions).to(logits.dtype) * active).sum()
                acc = hit / active.sum().clamp_min(1)
                hit_moves = ((logits.argmax(-1) == actions).to(logits.dtype) * moving).sum()
                recall = hit_moves / moving.sum().clamp_min(1)
            last["bc_nll"].append(float(nll.detach()))
            last["bc_value_loss"].append(float(v_loss.detach()))
            last["bc_accuracy"].append(float(acc))
            last["bc_move_recall"].append(float(recall))
    model.eval()
    return {k: float(np.mean(v)) for k, v in last.items()}
