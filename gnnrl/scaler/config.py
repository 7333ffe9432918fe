"""`ScalerConfig`: everything the in-cluster scaler needs, validated before it starts (S18).

The HPA rule, its tolerance and the guard's stabilisation windows and rate policies are one
nested `HPAConfig` (`hpa`), the same object the HPA baseline uses, at the
HorizontalPodAutoscaler v2 `behavior` defaults
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#default-behavior):
scale-down window 300 s, scale-up window 0 s, scale-up at most max(4 pods, 100 %) per 15 s,
scale-down at most 100 % per 15 s, tolerance 0.1. The flat keys of earlier versions
(`target_cpu_utilization`, `tolerance`, `scale_down_window_s`, ...) are still read and
translated into `hpa` (`LEGACY_HPA_KEYS`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from gnnrl.hpa.config import HPAConfig, ScalingRules
from gnnrl.config import ConfigError, JsonConfig

MODES = ("shadow", "active")
SOURCES = ("kiali", "prometheus", "sim")
#: The action space moves at most 7 replicas per service per step (moves 1..7 / 8..14).
MAX_MOVE = 7


@dataclasses.dataclass
class ServiceLimits(JsonConfig):
    """Per-Deployment bounds (replicas). `min_replicas` >= 1: a Deployment at 0 is hands-off."""

    min_replicas: int = 1
    max_replicas: int = 10

    def __post_init__(self) -> None:
        for name in ("min_replicas", "max_replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if self.min_replicas < 1:
            raise ConfigError(f"min_replicas: must be >= 1, got {self.min_replicas}")
        if self.min_replicas > self.max_replicas:
            raise ConfigError(
                f"min_replicas ({self.min_replicas}) > max_replicas ({self.max_replicas})"
            )


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclasses.dataclass
class ScalerConfig(JsonConfig):
    """The scaler's configuration (the ConfigMap's `scaler.json`).

    Attributes (units in the name or said):
        namespace: the Kubernetes namespace whose Deployments are scaled.
        services: Deployment name -> `ServiceLimits`. Only these are ever written; a service
            seen in the graph but not listed here is observed (it is a graph node) but never
            scaled.
        mode: "shadow" (decide and export, never write; the default) or "active".
        model: `models:/NAME@ALIAS`, a local model directory, or "" for the HPA rule only.
        model_sha256: expected sha256 of the model weights file; "" = take the hash recorded
            beside the model (`sha256` in its metadata / the MLflow version tag).
        source: graph source, "kiali", "prometheus" or "sim".
        interval_s: seconds between ticks. tick_deadline_s: a tick is abandoned after this
            (default 0.8 x interval).
        hpa: the HPA object the rule and the guard follow (`gnnrl.hpa.HPAConfig`): the
            rule's CPU target and tolerances, the stabilisation windows and rate policies
            (its `sync_period_s` is not used: the scaler syncs every `interval_s`).
        max_step: hard cap on the change of one service in one tick (<= 7, the action space).
        fallback_after_failures: consecutive failed model ticks before rule mode (N).
        recover_after_healthy: consecutive healthy ticks in rule mode before model mode (M).
        model_poll_s: how often the MLflow alias is polled for a new champion.
        api_timeout_s: per-request Kubernetes API timeout. api_backoff_s: retry delays for
            timeouts / 5xx (bounded by the tick deadline).
        lease_name, lease_duration_s, renew_deadline_s, retry_period_s: leader election
            (client-go leaderelection defaults 15 / 10 / 2 s).
        identity: this replica's Lease holder identity ("" = the pod's hostname).
        metrics_port: port of /metrics, /healthz and /readyz.
        feature_max: per observation node feature column, the largest value seen in
            training; a larger value is "out of the training range" (S4).
    """

    namespace: str = "default"
    services: dict[str, ServiceLimits] = dataclasses.field(default_factory=dict)
    mode: str = "shadow"
    model: str = ""
    model_sha256: str = ""
    source: str = "kiali"
    interval_s: float = 15.0
    tick_deadline_s: float = 0.0
    hpa: HPAConfig = dataclasses.field(default_factory=HPAConfig)
    max_step: int = MAX_MOVE
    fallback_after_failures: int = 1
    recover_after_healthy: int = 5
    model_poll_s: float = 60.0
    api_timeout_s: float = 5.0
    api_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0)
    lease_name: str = "gnnrl-scaler"
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    identity: str = ""
    metrics_port: int = 9090
    feature_max: tuple[float, ...] = (200.0, 200.0, 2.0e5, 4.0e5, 1.0e5, 1.0e5)

    def __post_init__(self) -> None:
        self.services = {
            str(k): v if isinstance(v, ServiceLimits) else ServiceLimits.from_dict(v)
            for k, v in dict(self.services).items()
        }
        self._check_names()
        self._check_hpa()
        for name in ("interval_s", "model_poll_s",
                     "api_timeout_s", "lease_duration_s", "renew_deadline_s", "retry_period_s"):
            _positive(name, getattr(self, name))
        _positive("tick_deadline_s", self.tick_deadline_s, allow_zero=True)
        for name in ("max_step", "fallback_after_failures",
                     "recover_after_healthy", "metrics_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: expected a non-negative integer, got {value!r}")
        if not 1 <= self.max_step <= MAX_MOVE:
            raise ConfigError(f"max_step: must be in 1..{MAX_MOVE}, got {self.max_step}")
        if self.fallback_after_failures < 1 or self.recover_after_healthy < 1:
            raise ConfigError("fallback_after_failures / recover_after_healthy: must be >= 1")
        self.api_backoff_s = tuple(float(b) for b in self.api_backoff_s)
        for b in self.api_backoff_s:
            _positive("api_backoff_s", b, allow_zero=True)
        if self.tick_deadline_s == 0.0:
            self.tick_deadline_s = 0.8 * self.interval_s
        if self.tick_deadline_s > self.interval_s:
            raise ConfigError(
                f"tick_deadline_s ({self.tick_deadline_s}) > interval_s ({self.interval_s})")
        # client-go leaderelection: LeaseDuration > RenewDeadline > RetryPeriod * JitterFactor.
        if not self.lease_duration_s > self.renew_deadline_s > self.retry_period_s:
            raise ConfigError("lease_duration_s > renew_deadline_s > retry_period_s must hold")
        if len(self.feature_max) != 6 or any(not v > 0 for v in self.feature_max):
            raise ConfigError("feature_max: expected 6 positive numbers (one per node feature)")
        self.feature_max = tuple(float(v) for v in self.feature_max)

    def _check_names(self) -> None:
        if not self.namespace:
            raise ConfigError("namespace: must not be empty")
        if self.mode not in MODES:
            raise ConfigError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.source not in SOURCES:
            raise ConfigError(f"source: expected one of {SOURCES}, got {self.source!r}")

    def _check_hpa(self) -> None:
        if isinstance(self.hpa, dict):
            self.hpa = HPAConfig.from_dict(self.hpa)
        if not isinstance(self.hpa, HPAConfig):
            raise ConfigError(f"hpa: expected a mapping, got {self.hpa!r}")
        if self.hpa.target_utilization is None:
            raise ConfigError("hpa.target_utilization: the scaler's rule needs a CPU target")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalerConfig:
        """As `JsonConfig.from_dict`; the flat HPA keys of earlier versions are translated
        into the nested ``hpa`` (`legacy_hpa`)."""
        if isinstance(data, dict) and any(k in LEGACY_HPA_KEYS for k in data):
            data = dict(data)
            legacy = {k: data.pop(k) for k in list(data) if k in LEGACY_HPA_KEYS}
            if "hpa" in data:
                raise ConfigError(f"hpa: give either the nested hpa or the older flat keys "
                                  f"({', '.join(sorted(legacy))}), not both")
            data["hpa"] = legacy_hpa(legacy)
        return super().from_dict(data)

    def limits(self, service: str) -> ServiceLimits:
        """The bounds of `service`; raises ConfigError naming an unknown service."""
        try:
            return self.services[service]
        except KeyError:
            raise ConfigError(f"services: unknown service {service!r}") from None

    def check_known_services(self, present: list[str]) -> None:
        """S18: refuse to start when a configured service is not a Deployment of the namespace.

        Raises:
            ConfigError: naming the configured services that do not exist.
        """
        missing = sorted(set(self.services) - set(present))
        if missing:
            raise ConfigError(
                f"services: unknown service(s) {', '.join(missing)} "
                f"(not a Deployment in namespace {self.namespace!r})")


#: flat keys of earlier versions -> their place in `HPAConfig`
LEGACY_HPA_KEYS = ("target_cpu_utilization", "tolerance", "scale_down_window_s",
                   "scale_up_window_s", "scale_up_pods", "scale_up_percent", "scale_down_pods",
                   "scale_down_percent", "rate_period_s")


def legacy_hpa(flat: dict[str, Any]) -> HPAConfig:
    """The `HPAConfig` meant by the flat keys of earlier versions (defaults as before)."""
    unknown = sorted(set(flat) - set(LEGACY_HPA_KEYS))
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(unknown)}")
    get = {**dict.fromkeys(LEGACY_HPA_KEYS), **flat}.get

    def num(name: str, default: float) -> float:
        value = get(name)
        if value is None:
            return default
        _positive(name, value, allow_zero=True)
        return float(value)

    period = num("rate_period_s", 15.0)
    try:
        return HPAConfig(
            target_utilization=num("target_cpu_utilization", 0.7),
            tolerance=num("tolerance", 0.1),
            scale_up=ScalingRules.rate(percent=round(num("scale_up_percent", 100.0)),
                                       pods=round(num("scale_up_pods", 4)), period_s=period,
                                       stabilization_window_s=num("scale_up_window_s", 0.0)),
            scale_down=ScalingRules.rate(percent=round(num("scale_down_percent", 100.0)),
                                         pods=round(num("scale_down_pods", 0)),
                                         period_s=period,
                                         stabilization_window_s=num("scale_down_window_s",
                                                                    300.0)),
        )
    except ConfigError as exc:
        raise ConfigError(f"{', '.join(sorted(flat))}: {exc}") from None


def load_config(path: str | Path, **overrides: Any) -> ScalerConfig:
    """Read a ScalerConfig from a JSON or YAML file; `overrides` (e.g. from the CLI) win.

    Raises:
        ConfigError: unreadable file, bad syntax, unknown or invalid field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as exc:  # yaml.YAMLError subclasses Exception only
        raise ConfigError(f"config file {path}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError
        raise ConfigError(f"config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return ScalerConfig.from_dict(data)
