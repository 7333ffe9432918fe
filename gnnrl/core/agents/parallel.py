"""A data-parallel PPO learner: the update's minibatches shared by several processes.

`ParallelLearner` starts ``processes - 1`` helper processes and joins them in a
``torch.distributed`` process group (gloo backend, a file store in a temporary folder;
https://pytorch.org/docs/stable/distributed.html). For every update the trainer sends the
helpers what the update reads (weights, optimizer state, the sampling generator's state,
the rollout) and every process runs the same `gnnrl.core.agents.ppo.ppo_update` on its
own contiguous part of each minibatch; gradients, loss and statistics are summed with one
``all_reduce`` per minibatch, after which each process takes the same optimizer step.

Exactness: the loss of a minibatch is written as a sum over its parts divided by the
minibatch size, so the summed gradient is the whole minibatch's gradient up to float
summation order (not bitwise the single-process result). The run is deterministic: with
two processes the all-reduce computes ``a + b`` per element, the same on both ranks and on
every run, and the trainer's own state (weights, optimizer, generator) after an update is
a function of its state before it, so a resumed run ends exactly where an uninterrupted one
with the same setting does (``tests/test_train_parallel.py``). With more than two
processes the reduction order is gloo's ring order, still deterministic for a fixed count.

Threads: each process runs torch on one thread; the point is to use a second core for the
update, which one process cannot (torch's intra-op threads do not help at these sizes).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import tempfile
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnrl.config import ConfigError
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.ppo import Batch, TrainingNaNError, ppo_update
from gnnrl.core.agents.ppo_gnn import PPO_GNN

#: seconds a process waits for the others in a collective before giving up
COLLECTIVE_TIMEOUT_S = 120


class _Shard:
    """`gnnrl.core.agents.ppo.GradientShard` over the default process group."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def all_reduce(self, flat: torch.Tensor) -> None:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)


def _init_group(store_path: str, rank: int, world: int) -> None:
    store = dist.FileStore(store_path, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world,
                            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))


def compact_batch(batch: Batch) -> Batch:
    """``batch`` without the edge rows no observation marks active (most of ``max_edges``).

    The policy drops those rows itself, so the update's result does not change; the
    rollout sent to the helpers shrinks ~20x.
    """
    used = torch.nonzero(batch.obs["edge_mask"].any(0)).flatten()
    if used.numel() == 0:
        used = used.new_zeros(1)
    obs = {**batch.obs, "edge_df": batch.obs["edge_df"][:, used],
           "edge_mask": batch.obs["edge_mask"][:, used]}
    return dataclasses.replace(batch, obs=obs)


def _helper_main(rank: int, world: int, store_path: str, inbox: Any) -> None:
    """A helper process: run the shipped updates on its part of each minibatch."""
    torch.set_num_threads(1)
    _init_group(store_path, rank, world)
    shard = _Shard(rank, world)
    built: tuple[Any, PPO_GNN, torch.optim.Optimizer] | None = None
    try:
        while True:
            job = inbox.get()
            if job is None:
                return
            # the model and optimizer objects are built once; every job overwrites their
            # state with the trainer's
            what = (job["policy_cls"], job["optimizer_cls"], repr(job["policy"]))
            if built is None or built[0] != what:
                model = job["policy_cls"](config=PolicyConfig.from_dict(job["policy"]))
                optimizer = job["optimizer_cls"](model.parameters(),
                                                 **job["optimizer_defaults"])
                built = (what, model, optimizer)
            _, model, optimizer = built
            model.load_state_dict(job["model"])
            optimizer.load_state_dict(job["optimizer"])
            generator = torch.Generator().manual_seed(0)
            generator.set_state(job["generator"])
            try:
                ppo_update(model, optimizer, Batch(**job["batch"]),
                           PPOConfig.from_dict(job["ppo"]), generator, shard)
            except TrainingNaNError:
                continue  # the trainer raises it too, and decides
    finally:
        dist.destroy_process_group()


class ParallelLearner:
    """Run `ppo_update` on ``processes`` processes (this one is rank 0).

    Use as a context manager, or call `close`. CPU only.
    """

    def __init__(self, processes: int = 2) -> None:
        if processes < 2:
            raise ConfigError(f"ParallelLearner needs >= 2 processes, got {processes}")
        if dist.is_initialized():
            raise ConfigError("a torch.distributed process group is already running in this "
                              "process; the parallel learner needs its own")
        self.world = processes
        self._dir = tempfile.mkdtemp(prefix="gnnrl-learner-")
        store_path = os.path.join(self._dir, "store")
        ctx = mp.get_context("spawn")
        self._inboxes = [ctx.Queue() for _ in range(processes - 1)]
        self._procs = [ctx.Process(target=_helper_main, daemon=True,
                                   args=(rank, processes, store_path, self._inboxes[rank - 1]))
                       for rank in range(1, processes)]
        for proc in self._procs:
            proc.start()
        _init_group(store_path, 0, processes)
        self._shard = _Shard(0, processes)

    def update(self, model: PPO_GNN, optimizer: torch.optim.Optimizer, batch: Batch,
               cfg: PPOConfig, generator: torch.Generator) -> dict[str, float]:
        """`ppo_update` with every minibatch shared among the processes."""
        if model.device.type != "cpu":
            raise ConfigError("the parallel learner runs on CPU only")
        batch = compact_batch(batch)
        job = {
            "policy_cls": type(model), "policy": model.config.to_dict(),
            # copies: the queue pickles in a background thread, while this process
            # already updates the live tensors
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer_cls": type(optimizer), "optimizer_defaults": optimizer.defaults,
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "generator": generator.get_state(), "ppo": cfg.to_dict(),
            "batch": {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)},
        }
        for inbox in self._inboxes:
            inbox.put(job)
        return ppo_update(model, optimizer, batch, cfg, generator, self._shard)

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ParallelLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
