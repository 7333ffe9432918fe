"""Training PPO_GNN in the simulator: `TrainConfig` and `train(config, out_dir) -> Path`.

The loop (one *update* = ``num_envs x num_steps`` env steps):

1. roll out the current policy in the env pool (`EnvPool` over separate Gymnasium envs;
   with ``env_pool="batched"``, `gnnrl.core.agents.sim_pool.SimPool`: the ``num_envs``
   episodes as rows of one batched simulator). Each env keeps its own
   TGN memory, remapped by service name after every step and reset at episode start; the
   pre-step memory of every step is stored with it;
2. compute GAE with the value of the final observation on truncation;
3. run the PPO epochs (`gnnrl.core.agents.ppo.ppo_update`), which recompute each step's
   memory update so the TGN's GRU is trained;
4. log (``metrics.jsonl``, MLflow when ``MLFLOW_TRACKING_URI`` is set, a tqdm bar),
   evaluate every ``eval_every`` updates against the HPA (70 % CPU) on fixed scenarios
   with validation seeds >= 5000 (disjoint from training and evaluation), and checkpoint
   every ``checkpoint_every`` updates.

Output folder::

    model/            the final policy (PPO_GNN.save): what `gnnrl evaluate`/scaler load
    best/             the policy with the best evaluation return so far
    checkpoints/      resumable training state (`gnnrl.core.agents.checkpoint`)
    metrics.jsonl     one JSON object per update (and per evaluation)
    train_config.json the full config of the run
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from gnnrl.config import ConfigError, JsonConfig, atomic_write_text
from gnnrl.contracts.observation import check_dial
from gnnrl.baselines.guarded import as_deployed
from gnnrl.core.envs.pool_step import VectorPool
from gnnrl.core.envs.vector import PRIVILEGED_DIM
from gnnrl.sim.timing import TIMING_PRESETS, TimingConfig
from gnnrl.sim.traces import TRACE_KINDS
from gnnrl.core.agents.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from gnnrl.core.agents.configs import PolicyConfig, PPOConfig
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy
from gnnrl.core.agents.parallel import ParallelLearner
from gnnrl.core.agents.ppo import (
    Batch,
    RewardNormalizer,
    TrainingNaNError,
    compute_gae,
    ppo_update,
)
from gnnrl.core.agents.ppo_gnn import PPO_GNN, fit_critic_input
from gnnrl.core.agents.quick_eval import evaluate
from gnnrl.contracts.seeds import TRAIN_SEED_LIMIT
from gnnrl.core.agents.rollout import EnvPool, RolloutBuffer, stack_obs
from gnnrl.core.agents.pool_group import PoolGroup
from gnnrl.core.agents.scenario_mix import TOPOLOGY_VARIANTS, training_setups
from gnnrl.core.agents.sim_pool import SimPool
from gnnrl.encoders.graph_batch import ObservationError, check_finite, obs_to_tensors
from gnnrl.encoders.tgn_encoder import MemoryBank


def check_teacher(spec: str) -> str:
    """``spec`` if it names an imitation teacher (`TrainConfig.bc_teacher`): hpa, hpa-NN
    (NN = 1..200 % CPU), headroom or oracle, or hpa / headroom / oracle @dial (the knob
    follows the episode's dial); ConfigError naming it otherwise."""
    if spec in ("hpa", "headroom", "oracle", "hpa@dial", "headroom@dial", "oracle@dial"):
        return spec
    m = re.fullmatch(r"hpa-(\d{1,3})", spec)
    if m and 1 <= int(m.group(1)) <= 200:
        return spec
    raise ConfigError(f"TrainConfig.bc_teacher must be hpa, hpa-NN (1..200), headroom or "
                      f"oracle, or one of them @dial (its knob follows the episode's "
                      f"dial), got {spec!r}")


@dataclasses.dataclass
class TrainConfig(JsonConfig):
    """Everything a training run needs (saved as ``train_config.json`` in the output).

    app: built-in name or spec path; goal_reward: "latency" | "cost"; traces x peaks x
    topology: the scenario mix (`gnnrl.core.agents.scenario_mix`); max_steps: episode
    length (control intervals); seed: < 1000 (evaluation seeds start at 1000);
    device: "auto" | "cpu" | "cuda"; torch_threads: intra-op threads (1 on shared CPUs);
    eval_every / checkpoint_every: in updates (0 = never; with eval_every, the start and the
    last update are validated too); bc_rounds: episodes per env of
    the teacher to imitate before PPO (0 = start from scratch;
    `gnnrl.core.agents.imitation`), bc_epochs: passes over that data; bc_teacher: the
    teacher, a policy spec of `gnnrl.evaluation.policies` ("hpa" = HPA at 70 % CPU;
    "headroom": the load-aware rule of `gnnrl.baselines.headroom`; or "oracle": the
    clairvoyant provisioner, whose moves the student must learn to make from the present
    observation alone); bc_dagger: DAgger iterations after the first fit (the student
    drives ``bc_rounds`` episodes per env, the teacher labels them, the student is refitted
    on everything so far); bc_learning_rate: Adam's step size for the imitation fits (0 =
    three times ``ppo.learning_rate``, the rule before this field existed; a fine-tuning PPO
    step size is far too small for fitting a fresh network); bc_move_weight: how many times
    a teacher's scale move weighs against a hold in the imitation loss (holds are the vast
    majority of labels; `gnnrl.core.agents.imitation.clone`); env_pool: "single" (one
    Gymnasium `OnlineBoutique` per env, `EnvPool`) or "batched" (the rollout envs are rows
    of one batched simulator,
    `gnnrl.core.agents.sim_pool.SimPool`: the same episode seeds, scenarios, traces and
    reward, several times faster, but the simulator noise is one stream for all rows, so
    runs are not bit-identical to "single" ones; an ``env_wrapper`` forces "single");
    learner_processes: processes that share each PPO update (1 = this process alone, the
    exact default; 2 = a data-parallel learner on a second core,
    `gnnrl.core.agents.parallel`: the same update up to float summation order, CPU only,
    resumes exactly; docs/performance.md).
    warm_start: a saved model folder (e.g. the registry's champion) whose weights and
    feature scaling training starts from, instead of fitting the scaling and imitating a
    teacher from scratch; its policy architecture replaces ``policy`` ("" = none). With
    ``bc_dagger`` > 0 it is first specialised to this run's apps and traffic by that many
    DAgger iterations from its own weights (the student drives, the teacher labels). This
    is how nightly retraining continues from the model in production.
    validate_as_deployed: the validation that picks ``best/`` runs the model as the scaler
    deploys it (the graph-wide scale-up, then the guard's stabilisation and rate limits:
    `gnnrl.baselines.guarded.as_deployed`) instead of its bare decisions.

    Training for generality (the shipped recipe, docs/policy.md):
    apps: applications to train on at once, overriding ``app`` when given: built-in names,
    spec paths, ``generated-<seed>`` with a training seed, or ``generated:K`` (K generated
    training apps drawn by the run seed); timings: cluster timing presets
    (`gnnrl.sim.timing`), every app runs under each; startup_scales: multipliers of the
    apps' start-up times, cycled over the (app, timing) setups; peak_scales: peak loads as
    multiples of each app's `default_peak_rps` (replaces ``peaks`` when given; apps differ
    in capacity). Each setup is one pool of ``num_envs / setups`` envs
    (`gnnrl.core.agents.pool_group.PoolGroup`); ``env_pool`` must be "batched" then.
    Real trace windows (``worldcup98@962h30m+12d``) are accepted in ``traces`` and refused
    when they overlap an evaluation window; evaluation apps are refused.
    dial: the cost/SLO preference the envs show and reward (0 = cheapest, 1 = safest), or
    "random": one drawn per episode, so one model spans the trade-off and serves at any
    dial (`gnnrl.core.envs.reward`). Time of day is drawn per episode with "random" (no
    synthetic trace has a clock to learn from).
    """

    app: str = "onlineboutique"
    goal_reward: str = "latency"
    traces: tuple[str, ...] = ("diurnal", "flash", "ramp", "fluctuating")
    peaks: tuple[float, ...] = (150.0, 300.0)
    topology: tuple[str, ...] = ("static", "add", "remove", "churn")
    max_steps: int = 240
    seed: int = 1
    device: str = "auto"
    torch_threads: int = 1
    eval_every: int = 10
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    bc_rounds: int = 0
    bc_epochs: int = 8
    bc_teacher: str = "hpa"
    bc_dagger: int = 0
    bc_learning_rate: float = 0.0
    bc_move_weight: float = 10.0
    env_pool: str = "single"
    learner_processes: int = 1
    warm_start: str = ""
    validate_as_deployed: bool = False
    apps: tuple[str, ...] = ()
    timings: tuple[str, ...] = ("ideal",)
    startup_scales: tuple[float, ...] = (1.0,)
    peak_scales: tuple[float, ...] = ()
    dial: float | str = 0.5
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        if isinstance(self.ppo, dict):
            self.ppo = PPOConfig.from_dict(self.ppo)
        if isinstance(self.policy, dict):
            self.policy = PolicyConfig.from_dict(self.policy)
        # the critic's privileged inputs exist exactly when the run feeds them
        self.policy = self.policy.replace(
            privileged_dim=PRIVILEGED_DIM if self.ppo.privileged_critic else 0)
        self.traces, self.peaks = tuple(self.traces), tuple(float(p) for p in self.peaks)
        self.topology = tuple(self.topology)
        self._check_mix()
        if not 0 <= self.seed < TRAIN_SEED_LIMIT:
            raise ConfigError(f"TrainConfig.seed must be in [0, {TRAIN_SEED_LIMIT}) "
                              f"(evaluation uses seeds >= 1000), got {self.seed}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"TrainConfig.device must be auto, cpu or cuda, got {self.device!r}")
        self._check_training_switches()
        if self.goal_reward not in ("latency", "cost"):
            raise ConfigError(f"TrainConfig.goal_reward must be latency or cost, "
                              f"got {self.goal_reward!r}")
        if not self.traces or not self.peaks or not self.topology:
            raise ConfigError("TrainConfig.traces, peaks and topology must be non-empty")
        bad = sorted(set(self.topology) - set(TOPOLOGY_VARIANTS))
        if bad:
            raise ConfigError(f"TrainConfig.topology: unknown variant(s) {bad}")
        self._check_imitation()
        if any(not p > 0 for p in self.peaks):
            raise ConfigError(f"TrainConfig.peaks must be > 0, got {self.peaks}")
        for name in ("max_steps", "torch_threads", "learner_processes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")

    def _check_training_switches(self) -> None:
        """Validate env_pool, the critic it allows, and validate_as_deployed."""
        if self.env_pool not in ("batched", "single"):
            raise ConfigError(f"TrainConfig.env_pool must be batched or single, "
                              f"got {self.env_pool!r}")
        if self.ppo.privileged_critic and self.env_pool != "batched":
            raise ConfigError("TrainConfig: ppo.privileged_critic needs env_pool 'batched' "
                              "(the batched simulator is what knows the trace ahead)")
        if not isinstance(self.validate_as_deployed, bool):
            raise ConfigError(f"TrainConfig.validate_as_deployed must be true or false, "
                              f"got {self.validate_as_deployed!r}")

    def _check_imitation(self) -> None:
        """Validate the imitation warm start's fields (bc_*)."""
        check_teacher(self.bc_teacher)
        for name in ("bc_rounds", "bc_epochs", "bc_dagger", "bc_learning_rate"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.bc_move_weight >= 1.0 and math.isfinite(self.bc_move_weight)):
            raise ConfigError(f"TrainConfig.bc_move_weight must be a finite number >= 1, "
                              f"got {self.bc_move_weight}")

    def _check_mix(self) -> None:
        """Validate the training-for-generality fields (apps, timings, scales, dial)."""
        self.apps, self.timings = tuple(self.apps), tuple(self.timings)
        self.startup_scales = tuple(float(s) for s in self.startup_scales)
        self.peak_scales = tuple(float(s) for s in self.peak_scales)
        if self.dial != "random":
            try:
                self.dial = check_dial(self.dial)
            except ValueError as exc:
                raise ConfigError(f"TrainConfig.dial: {exc} (or 'random')") from None
        bad_timing = sorted(set(self.timings) - set(TIMING_PRESETS))
        if not self.timings or bad_timing:
            raise ConfigError(f"TrainConfig.timings: one or more of {TIMING_PRESETS}, "
                              f"got {list(self.timings)}")
        if not self.startup_scales or any(not s > 0 for s in self.startup_scales):
            raise ConfigError(f"TrainConfig.startup_scales must be > 0, "
                              f"got {self.startup_scales}")
        if any(not s > 0 for s in self.peak_scales):
            raise ConfigError(f"TrainConfig.peak_scales must be > 0, got {self.peak_scales}")
        multi = len(self.apps) > 1 or len(self.timings) > 1 or any(
            a.startswith("generated:") for a in self.apps)
        if multi and self.env_pool != "batched":
            raise ConfigError("TrainConfig: several apps or timings need env_pool 'batched'")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a JSON config file (unknown keys are an error)."""
        try:
            return cls.from_json(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc


def spread(n: int, k: int = 4) -> list[int]:
    """Up to `k` indices spread evenly over ``0 .. n-1`` (ends included): the setups of a
    mix that fit the feature scaling and that the trainer's own evaluation runs."""
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("TrainConfig.device is 'cuda' but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` together."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainTracker(Protocol):
    """Where a run's per-update rows go (metrics.jsonl always; MLflow when the caller
    passes `gnnrl.registry.tracking.training_tracker`)."""

    def log(self, row: dict[str, Any], step: int) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...


class JsonlTracker:
    """``out/metrics.jsonl``: one JSON row per update."""

    def __init__(self, out: Path, config: TrainConfig | None = None) -> None:
        self.path = out / "metrics.jsonl"

    def log(self, row: dict[str, Any], step: int) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")

    def close(self, status: str = "FINISHED") -> None:
        pass


class Trainer:
    """One training run (see the module docstring). Use `train` unless you need the parts."""

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike[str],
                 progress: bool = True, env_wrapper: Callable[[Any], Any] | None = None,
                 policy_cls: type[PPO_GNN] = PPO_GNN) -> None:
        from gnnrl.core.envs import DynamicGraphConfig, OnlineBoutique
        from gnnrl.sim import SimConfig

        self.cfg = config
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        torch.set_num_threads(config.torch_threads)
        seed_everything(config.seed)
        self.device = resolve_device(config.device)
        try:
            self.setups = training_setups(
                config.apps or (config.app,), config.seed, config.traces, config.peaks,
                config.peak_scales, config.topology, config.max_steps, config.timings,
                config.startup_scales)
        except ValueError as exc:
            raise ConfigError(f"TrainConfig: {exc}") from None
        if config.ppo.num_envs % len(self.setups):
            raise ConfigError(f"TrainConfig: ppo.num_envs ({config.ppo.num_envs}) must be a "
                              f"multiple of the {len(self.setups)} (app, timing) setups")
        self.scenarios = list(self.setups[0].scenarios)
        tod = "random" if config.dial == "random" else 0.0

        graph = DynamicGraphConfig(max_nodes=config.policy.max_nodes,
                                   max_edges=config.policy.max_edges)

        def make_env(scenario: Any = None, setup: int = 0, dial: float | str = 0.5) -> Any:
            """An env of setup `setup` (evaluation: the first, at the middle dial)."""
            su = self.setups[setup]
            return OnlineBoutique(goal_reward=config.goal_reward, app=su.app,
                                  scenario=scenario or list(su.scenarios),
                                  max_steps=config.max_steps, graph_config=graph,
                                  sim_config=SimConfig(timing=TimingConfig.preset(su.timing)),
                                  dial=dial,
                                  time_of_day_s=tod if dial == "random" else 0.0)

        def make_train_env(setup: int = 0) -> Any:
            env = make_env(setup=setup, dial=config.dial)
            return env_wrapper(env) if env_wrapper is not None else env

        self.make_env: Callable[..., Any] = make_env
        self.make_train_env = make_train_env
        per_setup = config.ppo.num_envs // len(self.setups)
        self.pool: VectorPool
        if config.env_pool == "batched" and env_wrapper is None:
            pools = [SimPool(per_setup, config.seed + 7 * k, app=su.app,
                             scenarios=list(su.scenarios), max_steps=config.max_steps,
                             goal_reward=config.goal_reward, graph_config=graph,
                             sim_config=SimConfig(timing=TimingConfig.preset(su.timing)),
                             dial=config.dial,
                             time_of_day_s=tod, privileged=config.ppo.privileged_critic)
                     for k, su in enumerate(self.setups)]
            self.pool = pools[0] if len(pools) == 1 else PoolGroup(pools)
        else:
            self.pool = EnvPool([make_train_env] * config.ppo.num_envs, config.seed)
        self.pool_noise: dict[str, Any] | None = None  # restored after the first reset
        env0 = make_env()
        self.policy_cls = policy_cls
        self.model = policy_cls(env0.observation_space, env0.action_space,
                                config=config.policy).to(self.device)
        # every env of the run steps at the simulator's default interval; saved models say so
        self.model.trained_interval_s = float(env0.unwrapped.sim_config.interval_s)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.ppo.learning_rate,
                                          eps=config.ppo.adam_eps)
        self.normalizer = RewardNormalizer(config.ppo.num_envs, config.ppo.gamma,
                                           config.ppo.reward_clip)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.update = 0
        self.global_step = 0
        self.best_eval = -math.inf
        self.hpa_eval: dict[str, float] | None = None
        by_name = {s.name: s for s in self.scenarios}
        peak = max(config.peaks)
        picks = [f"{tr}-{peak:g}-{config.topology[i % len(config.topology)]}"
                 for i, tr in enumerate(config.traces)]
        # (setup, scenario) pairs the trainer's own evaluation runs (at the middle dial)
        self.eval_scenarios: list[tuple[int, Any]] = [
            (0, by_name[p]) for p in picks if p in by_name] or [(0, self.scenarios[0])]
        if len(self.setups) > 1:  # a mix: the largest synthetic peak of setups across it
            self.eval_scenarios = [
                (k, max((sc for sc in self.setups[k].scenarios if sc.trace in TRACE_KINDS
                         and not sc.events), key=lambda sc: sc.peak_rps,
                        default=self.setups[k].scenarios[0]))
                for k in spread(len(self.setups))]
        self.last_checkpoint_update = 0

    # -- setup ------------------------------------------------------------------------
    def start(self, warm: PPO_GNN | None = None) -> dict[str, Any]:
        """The run's starting point: the warm start's weights and feature scaling, or the
        scaling fitted here and the imitation warm start (when ``bc_rounds``). A starting
        point other than random weights is evaluated and saved as the first ``best/``
        candidate. Returns the row to log ({} when there is nothing to report)."""
        if warm is not None:
            self.model.load_state_dict(fit_critic_input(warm.state_dict(), self.model))
            row: dict[str, Any] = {"warm_start": 1.0}
            if self.cfg.bc_dagger:  # specialise it: DAgger on this run's mix, from its weights
                row.update(self.imitate(warm=True))
        else:
            self.fit_scaler()
            if not self.cfg.bc_rounds:
                return {}
            row = dict(self.imitate())
        if self.cfg.eval_every:
            row.update(self.evaluate())
            self.best_eval = row["eval/return"]
            self.model.save(self.out / "best", extra={"update": 0, **row})
        return row

    def fit_scaler(self) -> None:
        """Fit the feature standardisation on HPA-driven episodes (seeds 999 down): two
        of the first setup, or one of each of up to four setups spread over the mix."""
        from gnnrl.baselines.hpa import HPAPolicy

        n = len(self.setups)
        picks = [0, 0] if n == 1 else spread(n)
        hpa = HPAPolicy(target=0.7)
        rows = []
        for ep, setup in enumerate(picks):
            env = self.make_env(setup=setup, dial=self.cfg.dial)
            obs, info = env.reset(seed=TRAIN_SEED_LIMIT - 1 - ep)
            hpa.reset(env)
            for _ in range(self.cfg.max_steps):
                rows.append(obs)
                obs, _, te, tr, info = env.step(hpa.act(obs, info))
                if te or tr:
                    break
        t, _ = obs_to_tensors(stack_obs(rows), self.device)
        self.model.scaler.fit(t["svc_df"], t["node_mask"], t["edge_df"], t["edge_mask"],
                              t["global_feats"])

    def imitate(self, warm: bool = False) -> dict[str, float]:
        """Clone the teacher (``bc_rounds`` episodes per env, then ``bc_dagger`` DAgger
        iterations), critic included; returns the last fit's losses and the student's
        agreement with the teacher on the states it visits itself.

        ``warm``: the model is already a policy (a warm start), so there is no teacher-driven
        round: ``bc_dagger`` DAgger iterations (at least one episode per env each) refit it
        from its own weights on this run's apps and traffic; ``bc_warm_agreement`` is the
        starting policy's agreement with the teacher, before any refit."""
        from gnnrl.baselines.dialled import DialledRule, slo_margin, target_pct
        from gnnrl.baselines.oracle import OraclePolicy
        from gnnrl.baselines.specs import make_baseline
        from gnnrl.core.agents.imitation import clone, collect_teacher, merge

        cfg = self.cfg
        n = len(self.setups)
        pool = EnvPool([functools.partial(self.make_env, setup=i % n, dial=cfg.dial)
                        for i in range(cfg.ppo.num_envs)], cfg.seed + 1)
        teacher = cfg.bc_teacher

        def make_teacher() -> Any:
            if teacher == "oracle@dial":
                return DialledRule("oracle", lambda d: OraclePolicy(slo_margin=slo_margin(d)))
            if teacher.endswith("@dial"):  # the knob follows each episode's dial
                base = teacher[:-len("@dial")]
                return DialledRule(base, lambda d: make_baseline(f"{base}-{target_pct(d)}"))
            return make_baseline(teacher)

        def collect(student: bool) -> dict[str, Any]:
            return collect_teacher(self.model, pool, make_teacher,
                                   self.normalizer, cfg.ppo.gamma, max(1, cfg.bc_rounds),
                                   student_drives=student)

        def fit(data: dict[str, Any]) -> dict[str, float]:
            lr = cfg.bc_learning_rate or cfg.ppo.learning_rate * 3
            return clone(self.model, data, cfg.bc_epochs, cfg.ppo.minibatch_size, lr,
                         self.generator, move_weight=cfg.bc_move_weight)

        try:
            data = collect(student=warm)
            row = fit(data)
            if warm:  # how far the starting policy is from the teacher on this mix
                row["bc_warm_agreement"] = data["agreement"]
            for _ in range(cfg.bc_dagger - 1 if warm else cfg.bc_dagger):
                fresh = collect(student=True)
                row["bc_dagger_agreement"] = fresh["agreement"]
                data = merge(data, fresh)
                row.update(fit(data))
        finally:
            pool.close()
        return row

    def resume(self) -> bool:
        """Restore the newest checkpoint under ``out/checkpoints``; False when none."""
        folder = latest_checkpoint(self.out / "checkpoints")
        if folder is None:
            return False
        # on the CPU first (RNG states must be CPU tensors); load_state_dict copies the
        # weights and optimizer state onto the model's device
        ck = load_checkpoint(folder, "cpu")
        self.model.load_state_dict(ck.model.state_dict())
        self.optimizer.load_state_dict(ck.trainer["optimizer"])
        self.generator.set_state(ck.trainer["generator"])
        torch.set_rng_state(ck.trainer["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in ck.trainer:
            torch.cuda.set_rng_state_all(ck.trainer["cuda_rng"])
        self.normalizer.load_state_dict(ck.state["normalizer"])
        self.pool.episodes[:] = ck.state["episodes"]
        self.update, self.global_step = ck.state["update"], ck.state["global_step"]
        self.last_checkpoint_update = self.update
        self.best_eval = ck.state.get("best_eval", -math.inf)
        self.hpa_eval = ck.state.get("hpa_eval")
        self.pool_noise = ck.state.get("pool_noise")
        return True

    def reset_pool(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Start every env's next episode; after a resume, continue the checkpointed noise."""
        obs, infos = self.pool.reset()
        if self.pool_noise is not None:
            self.pool.set_noise_state(self.pool_noise)
        self.pool_noise = None
        return obs, infos

    def checkpoint(self) -> None:
        state = {
            "update": self.update, "global_step": self.global_step,
            # the current (fresh) episodes are replayed on resume: counters before them
            "episodes": (self.pool.episodes - 1).tolist(),
            "normalizer": self.normalizer.state_dict(), "best_eval": self.best_eval,
            "hpa_eval": self.hpa_eval, "config": self.cfg.to_dict(),
        }
        noise = self.pool.noise_state()
        if noise is not None:
            state["pool_noise"] = noise
        trainer = {"optimizer": self.optimizer.state_dict(),
                   "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":  # rollout sampling draws from the CUDA generator
            trainer["cuda_rng"] = torch.cuda.get_rng_state_all()
        save_checkpoint(self.out / "checkpoints", self.update, self.model, trainer, state,
                        keep=self.cfg.keep_checkpoints)

    # -- one update -----------------------------------------------------------------------
    def _tensors(self, obs: dict[str, np.ndarray], what: str) -> dict[str, torch.Tensor]:
        try:
            check_finite(obs)  # on the host arrays: no device synchronisation
        except ObservationError as exc:
            raise TrainingNaNError(f"{what}: {exc} (env index = observation row)") from exc
        t, _ = obs_to_tensors(obs, self.device)
        if "privileged" in obs:  # the asymmetric critic's inputs (training only)
            t["privileged"] = torch.as_tensor(obs["privileged"], device=self.device)
        return t

    def _final_values(self, step, bank: MemoryBank) -> np.ndarray:
        """Values of the final observations of envs whose episode ended (0 elsewhere)."""
        out = np.zeros(self.pool.num_envs, np.float32)
        ended = [i for i, o in enumerate(step.final_obs) if o is not None]
        if not ended:
            return out
        for i in ended:
            bank.update_node_mapping(step.final_info[i]["slot_names"], i)
        t = self._tensors(stack_obs([step.final_obs[i] for i in ended]),
                          f"step {self.global_step}: final observation")
        memory = None
        if self.model.tgn is not None:
            idx = torch.as_tensor(ended, device=self.device)
            memory = (bank.memory[idx], bank.last_update[idx], bank.t[idx] + 1.0)
        with torch.no_grad():
            _, value, _ = self.model(t, memory)
        out[ended] = value.cpu().numpy()
        return out

    def collect(self, obs, infos, bank: MemoryBank, buf: RolloutBuffer, stats: dict):
        """Fill ``buf`` with ``num_steps`` steps of every env; returns the next obs/infos."""
        self.model.eval()
        for _ in range(self.cfg.ppo.num_steps):
            t = self._tensors(obs, f"step {self.global_step}")
            memory = bank.state() if self.model.tgn is not None else None
            actions, logp, value, new_mem = self.model.sample(
                t, memory, temperature=self.cfg.ppo.sample_temperature,
                served=self.cfg.ppo.served_margins)
            if new_mem is not None and memory is not None:
                bank.commit(new_mem[0], new_mem[1], memory[2])
            pos = buf.add(t, memory, actions, logp, value)
            step = self.pool.step(actions.cpu().numpy())
            self.global_step += self.pool.num_envs
            bad = ~np.isfinite(step.rewards)
            if bad.any():
                raise TrainingNaNError(f"step {self.global_step}: non-finite reward from "
                                       f"env(s) {np.nonzero(bad)[0].tolist()}")
            buf.final_values[pos] = self._final_values(step, bank)
            done = step.done
            buf.rewards[pos] = (self.normalizer(step.rewards, done.astype(np.float64))
                                if self.cfg.ppo.norm_reward else step.rewards)
            buf.terminated[pos], buf.truncated[pos] = step.terminated, step.truncated
            for i, info in enumerate(step.infos):
                if done[i]:
                    bank.reset([i])
                bank.update_node_mapping(info["slot_names"], i)
            self._account(stats, step)
            obs, infos = step.obs, step.infos
        return obs, infos

    def _account(self, stats: dict, step) -> None:
        stats["ep_return"] += step.rewards
        for i, info in enumerate(step.final_info if step.done.any() else []):
            if info is not None:
                stats["returns"].append(float(stats["ep_return"][i]))
                stats["ep_return"][i] = 0.0
        for info in [fi or inf for fi, inf in zip(step.final_info, step.infos, strict=True)]:
            stats["slo"].append(float(info["slo_violated"]))
            stats["cost"].append(float(info["cost"]))

    def learn(self, buf: RolloutBuffer, next_obs, bank: MemoryBank,
              learner: ParallelLearner | None = None) -> dict[str, float]:
        t = self._tensors(next_obs, f"step {self.global_step}")
        memory = bank.state() if self.model.tgn is not None else None
        with torch.no_grad():
            _, last_values, _ = self.model(t, memory)
        cfg = self.cfg.ppo
        values = buf.values
        adv, ret = compute_gae(buf.rewards, values, buf.terminated, buf.truncated,
                               buf.final_values, last_values.cpu().numpy(), cfg.gamma,
                               cfg.gae_lambda)
        tgn = self.model.tgn is not None
        n, d = self.cfg.policy.max_nodes, self.cfg.policy.tgn.memory_dim
        batch = Batch(
            obs=buf.flat_obs(),
            memory=(buf.memory.reshape(-1, n, d), buf.last.reshape(-1, n),
                    buf.time.reshape(-1)) if tgn else None,
            actions=buf.actions.reshape(-1, n), logp=buf.logp.reshape(-1),
            values=buf.values_t.reshape(-1),
            advantages=torch.as_tensor(adv.reshape(-1), device=self.device),
            returns=torch.as_tensor(ret.reshape(-1), device=self.device),
        )
        try:
            if learner is not None:
                return learner.update(self.model, self.optimizer, batch, cfg, self.generator)
            return ppo_update(self.model, self.optimizer, batch, cfg, self.generator)
        except TrainingNaNError as exc:
            raise TrainingNaNError(f"update {self.update + 1} (step {self.global_step}): "
                                   f"{exc}") from exc

    def evaluate(self) -> dict[str, float]:
        """Deterministic GNNRL (bare, or as deployed with ``validate_as_deployed``) vs.
        HPA (70 % CPU) on the validation scenarios."""
        from gnnrl.baselines.hpa import HPAPolicy

        def make_env(pair: tuple[int, Any]) -> Any:
            return self.make_env(pair[1], setup=pair[0])

        if self.hpa_eval is None:
            self.hpa_eval = evaluate(HPAPolicy(target=0.7), make_env, self.eval_scenarios)
        policy_model = self.policy_cls(config=self.model.config).to(self.device)
        policy_model.load_state_dict(self.model.state_dict())
        policy: Any = GNNRLPolicy(policy_model)
        if self.cfg.validate_as_deployed:
            policy = as_deployed(policy)
        ours = evaluate(policy, make_env, self.eval_scenarios)
        out = {f"eval/{k}": v for k, v in ours.items()}
        out.update({f"eval_hpa/{k}": v for k, v in self.hpa_eval.items()})
        return out


def _bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", disable=not enabled,
                dynamic_ncols=True, desc="train")


def train(config: TrainConfig, out_dir: str | os.PathLike[str], resume: bool = True,
          progress: bool = True, stop_after_updates: int | None = None,
          env_wrapper: Callable[[Any], Any] | None = None,
          policy_cls: type[PPO_GNN] = PPO_GNN,
          tracker: Callable[[Path, TrainConfig], TrainTracker] = JsonlTracker) -> Path:
    """Train (or resume) a policy; returns the folder of the final model (``out/model``).

    ``stop_after_updates`` ends the run early after that many updates in this call (tests
    of interruption/resume); the model is still saved. ``env_wrapper`` wraps each training
    env (e.g. a Gymnasium wrapper; evaluation envs are not wrapped). ``policy_cls`` swaps
    the architecture for a `PPO_GNN` subclass with the same interface (benchmarks).
    ``tracker`` builds the run's `TrainTracker` from the output folder and the config
    (default metrics.jsonl only; the CLI and the pipeline pass
    `gnnrl.registry.tracking.training_tracker`, which adds MLflow).

    Raises:
        TrainingNaNError: NaN/inf in observations, rewards or losses (names the step and
            env); the last good checkpoint is kept.
        ConfigError: invalid configuration.
    """
    warm = None
    if config.warm_start:  # the architecture is the warm start's (its weights must fit)
        warm = policy_cls.load(config.warm_start)
        config = config.replace(policy=warm.config)  # (privileged_dim follows config.ppo)
    tr = Trainer(config, out_dir, progress, env_wrapper, policy_cls)
    out = tr.out
    atomic_write_text(out / "train_config.json", config.to_json())
    cfg = config.ppo
    run_tracker = tracker(out, config)
    status = "FAILED"
    learner = None
    if config.learner_processes > 1:
        if tr.device.type != "cpu":
            raise ConfigError("TrainConfig.learner_processes > 1 runs on CPU only; "
                              "set device to cpu")
        learner = ParallelLearner(config.learner_processes)
    resumed = resume and tr.resume()
    bar = _bar(cfg.num_updates * cfg.batch_size, tr.update * cfg.batch_size, progress)
    try:
        if not resumed:
            row = tr.start(warm)
            if row:
                run_tracker.log({"update": 0, **row}, 0)
        obs, infos = tr.reset_pool()
        bank = tr.model.new_memory(tr.pool.num_envs)
        for i, info in enumerate(infos):
            bank.update_node_mapping(info["slot_names"], i)
        buf = RolloutBuffer(cfg.num_steps, cfg.num_envs, config.policy.max_nodes,
                            config.policy.tgn.memory_dim, tr.device)
        stats: dict[str, Any] = {"ep_return": np.zeros(cfg.num_envs), "returns": [], "slo": [],
                                 "cost": []}
        done_here = 0
        while tr.update < cfg.num_updates:
            if stop_after_updates is not None and done_here >= stop_after_updates:
                break
            lr = cfg.learning_rate * (1.0 - tr.update / cfg.num_updates if cfg.anneal_lr else 1)
            for group in tr.optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            buf.reset()
            obs, infos = tr.collect(obs, infos, bank, buf, stats)
            row = tr.learn(buf, obs, bank, learner)
            tr.update += 1
            done_here += 1
            row.update(update=tr.update, global_step=tr.global_step, lr=lr,
                       sps=cfg.batch_size / (time.perf_counter() - t0),
                       slo_violation_rate=float(np.mean(stats["slo"])),
                       cost_cores=float(np.mean(stats["cost"])))
            if stats["returns"]:
                row["episode_return"] = float(np.mean(stats["returns"]))
            stats.update(returns=[], slo=[], cost=[])
            # the last update is validated too, so best/ can be the final weights even when
            # the run is shorter than eval_every (the quick pipeline's 2 updates)
            if config.eval_every and (tr.update % config.eval_every == 0
                                      or tr.update == cfg.num_updates):
                row.update(tr.evaluate())
                if row["eval/return"] > tr.best_eval:
                    tr.best_eval = row["eval/return"]
                    tr.model.save(out / "best", extra={"update": tr.update, **row})
            run_tracker.log(row, tr.global_step)
            bar.update(cfg.batch_size)
            bar.set_postfix(ret=f"{row.get('episode_return', float('nan')):.1f}",
                            slo=f"{row['slo_violation_rate']:.3f}",
                            cost=f"{row['cost_cores']:.2f}")
            if (config.checkpoint_every
                    and tr.update - tr.last_checkpoint_update >= config.checkpoint_every
                    and tr.pool.all_at_episode_start()):
                tr.checkpoint()
                tr.last_checkpoint_update = tr.update
        final = tr.model.save(out / "model", extra={"update": tr.update,
                                                    "global_step": tr.global_step})
        status = "FINISHED"
        return final
    finally:
        bar.close()
        run_tracker.close(status)
        tr.pool.close()
        if learner is not None:
            learner.close()
