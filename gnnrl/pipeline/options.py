"""Compile-time options of the pipeline: GPU request, scheduling, secrets, fan-out width.

These shape the compiled YAML (KFP needs them as literals); the run-time knobs are the
pipeline's parameters (see ``pipelines/pipeline.py``).
"""

from __future__ import annotations

import dataclasses

from gnnrl.config import ConfigError, JsonConfig

_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclasses.dataclass
class BuildOptions(JsonConfig):
    """How the pipeline is compiled.

    Attributes:
        gpu: request an accelerator for the train task (False removes request, node
            selector and toleration).
        accelerator_type: resource name of the accelerator (``nvidia.com/gpu``; KFP's
            ``set_accelerator_type``).
        accelerator_limit: accelerators per train task (>= 1).
        node_selector: ``key=value`` labels the train pod must land on ("" = none), e.g.
            ``nvidia.com/gpu.present=true`` (NVIDIA GPU feature discovery's label).
        toleration: ``key:Effect`` the train pod tolerates ("" = none), e.g. the usual
            ``nvidia.com/gpu:NoSchedule`` taint of GPU node pools.
        parallelism: how many seeds train at once (ParallelFor parallelism, >= 1).
        mlflow_secret: Kubernetes Secret with ``username``/``password`` for MLflow
            ("" = none); mounted as MLFLOW_TRACKING_USERNAME/PASSWORD (optional secret).
        kiali_secret: Kubernetes Secret with ``token`` for Kiali/Prometheus ("" = none);
            mounted at /var/run/secrets/gnnrl-kiali on the collect task (optional secret).
        collect_retries: retries of the collect task (>= 0), exponential backoff from 30 s.
        train_cpu / train_memory: resource requests of the train task (Kubernetes units).
    """

    gpu: bool = True
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    node_selector: str = "nvidia.com/gpu.present=true"
    toleration: str = "nvidia.com/gpu:NoSchedule"
    parallelism: int = 3
    mlflow_secret: str = "gnnrl-mlflow"
    kiali_secret: str = "gnnrl-kiali"
    collect_retries: int = 3
    train_cpu: str = "2"
    train_memory: str = "4Gi"

    def __post_init__(self) -> None:
        if self.accelerator_limit < 1:
            raise ConfigError("BuildOptions.accelerator_limit must be >= 1")
        if self.parallelism < 1:
            raise ConfigError("BuildOptions.parallelism must be >= 1")
        if self.collect_retries < 0:
            raise ConfigError("BuildOptions.collect_retries must be >= 0")
        if self.node_selector and "=" not in self.node_selector:
            raise ConfigError(
                f"BuildOptions.node_selector must be key=value, got {self.node_selector!r}"
            )
        if self.toleration:
            key, _, effect = self.toleration.partition(":")
            if not key or effect not in _EFFECTS:
                raise ConfigError(
                    f"BuildOptions.toleration must be key:{'|'.join(_EFFECTS)}, "
                    f"got {self.toleration!r}"
                )

    def node_selector_pair(self) -> tuple[str, str] | None:
        """(label key, value) or None."""
        if not self.node_selector:
            return None
        key, _, value = self.node_selector.partition("=")
        return key, value

    def toleration_pair(self) -> tuple[str, str] | None:
        """(taint key, effect) or None."""
        if not self.toleration:
            return None
        key, _, effect = self.toleration.partition(":")
        return key, effect
