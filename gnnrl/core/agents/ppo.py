"""PPO: GAE, reward normalisation and the clipped-surrogate update for `PPO_GNN`.

Follows CleanRL's ``ppo.py`` (Huang et al., "The 37 implementation details of PPO",
https://iclr-blog-track.github.io/2022/03/25/ppo-implementation-details/): GAE, minibatch
epochs, per-minibatch advantage normalisation, clipped policy and value losses, entropy
bonus, global grad-norm clipping, Adam with eps 1e-5 and a linearly annealed learning rate,
and reward scaling by the running std of the discounted return.

Truncation (time limit) is not termination: the reward of a truncated step is augmented
with ``gamma * V(final observation)`` (as Stable-Baselines3 does in
``OnPolicyAlgorithm.collect_rollouts``) and the advantage recursion stops at the episode
boundary; a terminated step bootstraps nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from gnnrl.core.agents.configs import PPOConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN
from gnnrl.encoders.update_batch import UpdateBatch


class TrainingNaNError(RuntimeError):
    """A NaN/inf appeared in observations, rewards or losses; the message names where."""


def compute_gae(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray,
                truncated: np.ndarray, final_values: np.ndarray, last_values: np.ndarray,
                gamma: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over a rollout of T steps and B envs.

    Step ``t`` of env ``b`` got ``rewards[t, b]`` after acting on the observation whose
    value is ``values[t, b]``. If the episode ended at that step (``terminated`` or
    ``truncated``), the next row is a fresh episode; ``final_values[t, b]`` is the value of
    the final observation, used only when truncated. ``last_values`` ``(B,)`` is the value
    of the observation after the last step.

    Shapes: all ``(T, B)`` except ``last_values`` ``(B,)``. Returns (advantages, returns).
    """
    t_len = rewards.shape[0]
    rewards = rewards + gamma * final_values * truncated
    ended = np.logical_or(terminated, truncated).astype(np.float64)
    adv = np.zeros_like(rewards, dtype=np.float64)
    last = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in reversed(range(t_len)):
        next_values = last_values if t == t_len - 1 else values[t + 1]
        cont = 1.0 - ended[t]
        delta = rewards[t] + gamma * next_values * cont - values[t]
        last = delta + gamma * gae_lambda * cont * last
        adv[t] = last
    return adv.astype(np.float32), (adv + values).astype(np.float32)


class RewardNormalizer:
    """Scale rewards by the running std of the discounted return (gymnasium's NormalizeReward).

    Shapes: rewards and dones ``(B,)``. State is a plain dict of floats/lists (checkpointed).
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.returns = np.zeros(num_envs, np.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self._update(self.returns)
        self.returns = self.returns * (1.0 - dones)
        out = rewards / np.sqrt(self.var + self.eps)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def _update(self, x: np.ndarray) -> None:
        b_mean, b_var, b_count = float(x.mean()), float(x.var()), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean += delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var, self.count = m2 / total, total

    def state_dict(self) -> dict:
        return {"returns": self.returns.tolist(), "mean": self.mean, "var": self.var,
                "count": self.count}

    def load_state_dict(self, state: Mapping) -> None:
        self.returns = np.asarray(state["returns"], np.float64)
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


@dataclass
class Batch:
    """A flattened rollout, ready for minibatching (tensors on the model's device).

    Shapes: obs tensors ``(M, ...)``; memory ``(M, N, D)``, last ``(M, N)``, time ``(M,)``
    (None without TGN); actions ``(M, N)``; logp, values, advantages, returns ``(M,)``.
    """

    obs: dict[str, Tensor]
    memory: tuple[Tensor, Tensor, Tensor] | None
    actions: Tensor
    logp: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def take(self, idx: Tensor) -> Batch:
        mem = None
        if self.memory is not None:
            m0, m1, m2 = self.memory
            mem = (m0[idx], m1[idx], m2[idx])
        return Batch({k: v[idx] for k, v in self.obs.items()}, mem, self.actions[idx],
                     self.logp[idx], self.values[idx], self.advantages[idx],
                     self.returns[idx])


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - Var(target - pred) / Var(target); NaN when the target is constant."""
    var = float(np.var(target))
    return float("nan") if var == 0 else 1.0 - float(np.var(target - pred)) / var


class GradientShard(Protocol):
    """One of ``world`` processes that share each minibatch (a data-parallel learner).

    Rank r evaluates the r-th contiguous part of every minibatch; `all_reduce` sums a flat
    float tensor over the processes in place, giving every process the same result.
    """

    rank: int
    world: int

    def all_reduce(self, flat: Tensor) -> None: ...


def minibatch_loss(model: PPO_GNN, mb: UpdateBatch, old_logp: Tensor, old_values: Tensor,
                   adv: Tensor, returns: Tensor, cfg: PPOConfig, total: int
                   ) -> tuple[Tensor, dict[str, Tensor]]:
    """The clipped PPO loss of (part of) a minibatch of ``total`` samples.

    Every mean over the minibatch is written as a sum over this part divided by ``total``,
    so the parts of a minibatch split over processes add up to the whole minibatch's loss.
    ``adv`` is already normalised over the whole minibatch. Returns the loss and the
    statistics' parts (sums / total): policy_loss, value_loss, entropy, approx_kl,
    clip_frac (detached).

    Shapes: ``mb`` of m samples; old_logp, old_values, adv, returns ``(m,)``.
    """
    logp, ent, value = model.evaluate_update(mb, cfg.sample_temperature, cfg.served_margins)
    logratio = logp - old_logp
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).sum() / total
        clip_frac = ((ratio - 1.0).abs() > cfg.clip_coef).float().sum() / total
    pg_loss = torch.max(-adv * ratio,
                        -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).sum() / total
    if cfg.clip_vloss:
        v_clipped = old_values + (value - old_values).clamp(-cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * torch.max((value - returns) ** 2,
                                 (v_clipped - returns) ** 2).sum() / total
    else:
        v_loss = 0.5 * ((value - returns) ** 2).sum() / total
    # Entropy bonus per service: the joint entropy is a sum over 10-20 services, so
    # ent_coef applies to its mean per active service (the scale CleanRL's 0.01 was tuned
    # for: one categorical decision), not to the sum.
    active = mb.active.sum(-1).clamp_min(1).to(ent.dtype)
    entropy = (ent / active).sum() / total
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
    stats = {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(),
             "entropy": entropy.detach(), "approx_kl": approx_kl, "clip_frac": clip_frac}
    return loss, stats


def ppo_update(model: PPO_GNN, optimizer: torch.optim.Optimizer, batch: Batch,
               cfg: PPOConfig, generator: torch.Generator,
               shard: GradientShard | None = None) -> dict[str, float]:
    """Run ``update_epochs`` epochs of minibatch PPO on ``batch``; return mean statistics.

    The graph structure and TGN partner messages of the rollout are computed once
    (`PPO_GNN.prepare_update`), not per minibatch. With ``shard``, this process computes
    the gradient of its part of every minibatch and the parts are summed over the
    processes (`GradientShard.all_reduce`) before the (identical) optimizer step.

    Raises `TrainingNaNError` when a loss is not finite (nothing is stepped then).
    """
    model.train()
    stats: dict[str, list[float]] = {k: [] for k in
                                     ("policy_loss", "value_loss", "entropy", "approx_kl",
                                      "clip_frac", "grad_norm")}
    size = len(batch)
    mb = size // cfg.num_minibatches
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        prepared = model.prepare_update(batch.obs, batch.memory, batch.actions)
    for epoch in range(cfg.update_epochs):
        perm = torch.randperm(size, generator=generator).to(batch.actions.device)
        for start in range(0, size, mb):
            idx = perm[start:start + mb]
            adv = batch.advantages[idx]
            if cfg.norm_adv and adv.numel() > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            if shard is not None:
                part = slice(shard.rank * idx.numel() // shard.world,
                             (shard.rank + 1) * idx.numel() // shard.world)
                idx, adv = idx[part], adv[part]
            loss, parts = minibatch_loss(model, prepared.take(idx), batch.logp[idx],
                                         batch.values[idx], adv, batch.returns[idx], cfg,
                                         total=mb)
            optimizer.zero_grad(set_to_none=True)
            if shard is None:
                _check_finite(loss, parts, epoch)
                loss.backward()
            else:
                loss.backward()
                loss = _all_reduce(shard, params, loss, parts)
                _check_finite(loss, parts, epoch)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            for key, val in (*parts.items(), ("grad_norm", grad_norm)):
                stats[key].append(float(val.detach()))
        if cfg.target_kl is not None and np.mean(stats["approx_kl"][-cfg.num_minibatches:]) \
                > cfg.target_kl:
            break
    model.eval()
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    out["explained_variance"] = explained_variance(batch.values.cpu().numpy(),
                                                   batch.returns.cpu().numpy())
    return out


def _check_finite(loss: Tensor, parts: dict[str, Tensor], epoch: int) -> None:
    if not torch.isfinite(loss):
        raise TrainingNaNError(
            f"non-finite PPO loss in epoch {epoch} (policy {parts['policy_loss'].item()}, "
            f"value {parts['value_loss'].item()}, entropy {parts['entropy'].item()})"
        )


def _all_reduce(shard: GradientShard, params: Sequence[Tensor], loss: Tensor,
                parts: dict[str, Tensor]) -> Tensor:
    """Sum gradients, loss and statistics over the processes (one message); returns the
    whole minibatch's loss and rewrites ``parts`` in place with the sums."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    scalars = torch.stack([loss.detach(), *parts.values()]).to(grads[0].dtype)
    flat = torch.cat([g.reshape(-1) for g in grads] + [scalars])
    shard.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
        offset += g.numel()
    sums = flat[offset:]
    for key, val in zip(parts, sums[1:], strict=True):
        parts[key] = val
    return sums[0]
