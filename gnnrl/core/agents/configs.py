"""Typed configs of the policy and of PPO (JSON round-trip; a model carries its own)."""

from __future__ import annotations

import dataclasses
import math

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.contracts.moves import NUM_MOVES


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be > 0, got {value!r}")


def _unit(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be in [0, 1], got {value!r}")


@dataclasses.dataclass
class TGNConfig(JsonConfig):
    """Temporal memory (`gnnrl.encoders.tgn_encoder.DynamicTGNEncoder`).

    memory_dim: per-service GRU memory width; time_dim: cosine time-encoding width;
    heads: attention heads of the read-out TransformerConv.
    """

    memory_dim: int = 32
    time_dim: int = 8
    heads: int = 2

    def __post_init__(self) -> None:
        _positive(self, "memory_dim", "time_dim", "heads")


@dataclasses.dataclass
class PolicyConfig(JsonConfig):
    """Architecture of `PPO_GNN`.

    max_nodes/max_edges: observation padding (the env's DynamicGraphConfig); num_moves: 15
    (0 nothing, 1..7 add k, 8..14 remove k-7); hidden_dim: embedding width (divisible by
    gnn_heads and tgn.heads); gnn_layers: TransformerConv layers (2-3); use_tgn: add the
    temporal memory embedding to the structural one (sum); hold_margin: serving only: in
    deterministic mode a service moves only when its best move's logit beats "nothing"'s by
    more than this (a log-odds margin, the model's counterpart of HPA's 10 % tolerance:
    borderline decisions hold instead of flapping); 0 = plain arg-max; hold_margin_down:
    the margin a *removal* must clear instead (None = ``hold_margin``): a larger one asks
    more confidence before giving pods back than before adding them, the asymmetry of
    HPA's scale-down stabilisation, and cuts direction reversals. Training (sampled
    moves) ignores both. privileged_dim: width of the training-only inputs of the critic
    (`gnnrl.core.envs.vector.PRIVILEGED_DIM` with ``PPOConfig.privileged_critic``, else 0):
    the value reads them, the actor never does, and serving passes zeros.
    """

    max_nodes: int = 20
    max_edges: int = 400
    num_moves: int = NUM_MOVES
    hidden_dim: int = 64
    gnn_layers: int = 2
    gnn_heads: int = 2
    use_tgn: bool = True
    tgn: TGNConfig = dataclasses.field(default_factory=TGNConfig)
    hold_margin: float = 0.0
    hold_margin_down: float | None = None
    privileged_dim: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.tgn, dict):
            self.tgn = TGNConfig.from_dict(self.tgn)
        margins = {"hold_margin": self.hold_margin}
        if self.hold_margin_down is not None:  # None: removals use hold_margin
            margins["hold_margin_down"] = self.hold_margin_down
        for name, value in margins.items():
            if not (isinstance(value, (int, float)) and value >= 0.0 and math.isfinite(value)):
                raise ConfigError(f"PolicyConfig.{name} must be a finite number >= 0, "
                                  f"got {value}")
        _positive(self, "max_nodes", "max_edges", "num_moves", "hidden_dim", "gnn_layers",
                  "gnn_heads")
        if (not isinstance(self.privileged_dim, int) or isinstance(self.privileged_dim, bool)
                or self.privileged_dim < 0):
            raise ConfigError(f"PolicyConfig.privileged_dim must be an integer >= 0, "
                              f"got {self.privileged_dim!r}")
        if self.num_moves != NUM_MOVES:
            raise ConfigError(f"PolicyConfig.num_moves must be {NUM_MOVES} (the action contract), "
                              f"got {self.num_moves}")
        if not 1 <= self.gnn_layers <= 4:
            raise ConfigError(f"PolicyConfig.gnn_layers must be in 1..4, got {self.gnn_layers}")
        for heads_name, heads in (("gnn_heads", self.gnn_heads), ("tgn.heads", self.tgn.heads)):
            if self.hidden_dim % heads:
                raise ConfigError(f"PolicyConfig.hidden_dim ({self.hidden_dim}) must be "
                                  f"divisible by {heads_name} ({heads})")


@dataclasses.dataclass
class PPOConfig(JsonConfig):
    """PPO hyperparameters (CleanRL's ppo.py defaults where the issue does not say otherwise).

    Steps are env steps summed over envs: one update consumes ``num_envs * num_steps``.
    ``sample_temperature``: the rollouts sample moves from ``softmax(logits / T)`` and the
    update optimises that same distribution (1 = the plain softmax). Serving takes the
    arg-max, which no temperature changes: T < 1 makes the policy PPO improves closer to
    the one that is served (fewer random moves whose damage it would learn to hedge).
    ``served_margins``: the rollouts and the update take the model's hold margins off the
    logits of the moves they guard (`PPO_GNN.sampling_logits`), so the distribution PPO
    samples and improves has the *served* decision as its mode; without it, PPO improves
    a distribution that moves far more often than the margins let the served policy move.
    ``privileged_critic``: an asymmetric actor-critic. The critic also reads what only the
    simulator knows (the trace ahead, the true rather than the lagged load and latency;
    `gnnrl.core.envs.vector.privileged_features`), to make its advantages less noisy; the
    actor, and so the served policy, still sees only the observation. Measured, it did not
    make PPO beat its imitation start (docs/policy.md).
    """

    total_steps: int = 200_000
    num_envs: int = 8
    num_steps: int = 120
    learning_rate: float = 3e-4
    adam_eps: float = 1e-5
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    norm_adv: bool = True
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    norm_reward: bool = True
    reward_clip: float = 10.0
    sample_temperature: float = 1.0
    privileged_critic: bool = False
    served_margins: bool = False

    def __post_init__(self) -> None:
        _positive(self, "total_steps", "num_envs", "num_steps", "learning_rate", "adam_eps",
                  "num_minibatches", "update_epochs", "max_grad_norm", "reward_clip",
                  "sample_temperature")
        _unit(self, "gamma", "gae_lambda")
        for name in ("clip_coef", "ent_coef", "vf_coef"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
                raise ConfigError(f"PPOConfig.{name} must be a finite number >= 0, got {value!r}")
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ConfigError(
                f"PPOConfig.num_minibatches ({self.num_minibatches}) must divide "
                f"num_envs * num_steps ({self.num_envs * self.num_steps})"
            )
        if self.target_kl is not None and self.target_kl <= 0:
            raise ConfigError(f"PPOConfig.target_kl must be > 0 or null, got {self.target_kl}")
        for flag in ("privileged_critic", "served_margins"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"PPOConfig.{flag} must be true or false, "
                                  f"got {getattr(self, flag)!r}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_size)
