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

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.contracts.moves import MAX_STEP as MAX_MOVE  # at most 7 replicas per move
from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial
from gnnrl.hpa.config import HPAConfig, ScalingRules
from gnnrl.hpa.model_guard import ModelGuardConfig

MODES = ("shadow", "active")
SOURCES = ("kiali", "prometheus", "sim")


@dataclasses.dataclass
class ServiceLimits(JsonConfig):
    """Per-Deployment bounds (replicas). `min_replicas` >= 1: a Deployment at 0 is hands-off.

    `startup_s` (seconds from pod creation to Ready) stands in for the service's start-up
    time while none of its pods is Ready to measure it; None = `startup_s_default`.
    """

    min_replicas: int = 1
    max_replicas: int = 10
    startup_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_replicas", "max_replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if self.startup_s is not None:
            _positive("startup_s", self.startup_s, allow_zero=True)
            self.startup_s = float(self.startup_s)
        if self.min_replicas < 1:
            raise ConfigError(f"min_replicas: must be >= 1, got {self.min_replicas}")
        if self.min_replicas > self.max_replicas:
            raise ConfigError(
                f"min_replicas ({self.min_replicas}) > max_replicas ({self.max_replicas})"
            )


#: Largest graph answer (bytes) the scaler reads: a 59 MB Kiali answer took a scaler pod
#: from 399 to 819 MiB RSS (the JSON text, its decoded objects and the frames); with the
#: Deployment's 1 GiB limit, 8 MiB (thousands of edges, far beyond `max_edges`) leaves room.
GRAPH_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")


@dataclasses.dataclass
class EndpointConfig(JsonConfig):
    """How the scaler reaches one HTTP service (Kiali, Prometheus or MLflow).

    Attributes:
        url: base URL ("" = from the command line or the environment).
        token: bearer token; never shown by ``repr`` nor logged (`ScalerConfig.redacted`).
        token_file: read at each request instead (projected ServiceAccount tokens rotate).
        ca_bundle: PEM CA bundle verifying the server's TLS certificate ("" = system CAs).
        verify: False turns TLS verification off (a test cluster; never in production).
        timeout_s: per-request connect and read timeout, seconds (a graph request is also
            cut to what is left of the tick).
    """

    url: str = ""
    token: str = dataclasses.field(default="", repr=False)
    token_file: str = ""
    ca_bundle: str = ""
    verify: bool = True
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("url", "token", "token_file", "ca_bundle"):
            _string(name, getattr(self, name))
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url: expected an http(s) URL, got {self.url!r}")
        if self.token and self.token_file:
            raise ConfigError("token and token_file: give one of them")
        if not isinstance(self.verify, bool):
            raise ConfigError(f"verify: expected true or false, got {self.verify!r}")
        if self.ca_bundle and not self.verify:
            raise ConfigError("ca_bundle and verify=false: a CA bundle needs verification on")
        _positive("timeout_s", self.timeout_s)

    def tls_verify(self) -> bool | str:
        """What `requests` takes as ``verify``: the CA bundle path, or True/False."""
        return self.ca_bundle or self.verify

    def source_settings(self) -> dict[str, Any]:
        """The `HttpConfig` fields of this endpoint (without `base_url`)."""
        return {"token": self.token or None, "token_file": self.token_file or None,
                "verify": self.tls_verify(), "timeout_s": float(self.timeout_s)}


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
        dial: the operator's cost/SLO preference in [0, 1] (0 = cheapest, 1 = safest) the
            model serves at: written into every observation before inference
            (`gnnrl.core.agents.dial.with_dial`); default 0.5, the middle of the trade-off.
            The pipeline's deploy step sets the dial the model was judged at.
        model_sha256: expected sha256 of the model weights file; "" = take the hash recorded
            beside the model (`sha256` in its metadata / the MLflow version tag).
        source: graph source, "kiali", "prometheus" or "sim".
        interval_s: seconds between ticks. tick_deadline_s: a tick is abandoned after this
            (default 0.8 x interval).
        hpa: the HPA object the rule and the guard follow (`gnnrl.hpa.HPAConfig`): the
            rule's CPU target and tolerances, the stabilisation windows and rate policies
            (its `sync_period_s` is not used: the scaler syncs every `interval_s`).
        model_guard: what the guard adds for the *model's* decisions
            (`gnnrl.hpa.model_guard.ModelGuardConfig`): its scale-down window (300 s; None =
            the HPA object's) and no scale-down for 360 s after a scale-up (0 = off). The
            HPA-rule fallback follows `hpa` alone.
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
        graph_scaleup: in model mode, raise the model's decision for the callees of a
            throttled service to the load their callers receive
            (`gnnrl.baselines.graph_scaleup`; the ``gnnrl`` evaluation row does the same).
        feature_max: per observation node feature column of the seed's six (pods,
            desired, CPU, memory, req/s in and out), the largest value seen in training; a
            larger value is "out of the training range" (S4).
        kiali, prometheus, mlflow: how to reach them (`EndpointConfig`: url, token or
            token_file, ca_bundle, verify, timeout_s); --kiali-url, --prometheus-url and
            --mlflow-uri override the URLs.
        graph_max_payload_bytes: a larger graph answer is refused while streaming, before
            parsing (`PayloadTooLarge`; the tick uses the HPA rule).
        slo_p95_ms: the end-to-end p95 objective at the entry, ms (the observation's SLO
            columns; the app spec's ``slo_p95_ms``, 250 ms for OnlineBoutique).
        startup_s_default: seconds from pod creation to Ready assumed for a service none of
            whose pods is Ready to measure it (and without its own `startup_s`).
    """

    namespace: str = "default"
    services: dict[str, ServiceLimits] = dataclasses.field(default_factory=dict)
    mode: str = "shadow"
    model: str = ""
    model_sha256: str = ""
    dial: float = DEFAULT_DIAL
    source: str = "kiali"
    interval_s: float = 15.0
    tick_deadline_s: float = 0.0
    hpa: HPAConfig = dataclasses.field(default_factory=HPAConfig)
    model_guard: ModelGuardConfig = dataclasses.field(default_factory=ModelGuardConfig)
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
    graph_scaleup: bool = True
    feature_max: tuple[float, ...] = (200.0, 200.0, 2.0e5, 4.0e5, 1.0e5, 1.0e5)
    kiali: EndpointConfig = dataclasses.field(default_factory=EndpointConfig)
    prometheus: EndpointConfig = dataclasses.field(default_factory=EndpointConfig)
    mlflow: EndpointConfig = dataclasses.field(
        default_factory=lambda: EndpointConfig(timeout_s=10.0))
    graph_max_payload_bytes: int = GRAPH_MAX_PAYLOAD_BYTES
    slo_p95_ms: float = 250.0
    startup_s_default: float = 30.0

    def __post_init__(self) -> None:
        self._check_services()
        self._check_choices()
        self._check_hpa()
        self._check_endpoints()
        for name in ("interval_s", "model_poll_s", "api_timeout_s", "lease_duration_s",
                     "renew_deadline_s", "retry_period_s", "slo_p95_ms"):
            _positive(name, getattr(self, name))
        for name in ("tick_deadline_s", "startup_s_default"):
            _positive(name, getattr(self, name), allow_zero=True)
        for name in ("max_step", "fallback_after_failures",
                     "recover_after_healthy", "metrics_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: expected a non-negative integer, got {value!r}")
        if not 1 <= self.max_step <= MAX_MOVE:
            raise ConfigError(f"max_step: must be in 1..{MAX_MOVE}, got {self.max_step}")
        if self.fallback_after_failures < 1 or self.recover_after_healthy < 1:
            raise ConfigError("fallback_after_failures / recover_after_healthy: must be >= 1")
        if isinstance(self.api_backoff_s, int | float) or not isinstance(
                self.api_backoff_s, list | tuple):
            raise ConfigError(f"api_backoff_s: expected a list of seconds, e.g. [0.5, 1, 2], "
                              f"got {self.api_backoff_s!r}")
        for b in self.api_backoff_s:
            _positive("api_backoff_s", b, allow_zero=True)
        self.api_backoff_s = tuple(float(b) for b in self.api_backoff_s)
        if self.tick_deadline_s == 0.0:
            self.tick_deadline_s = 0.8 * self.interval_s
        if self.tick_deadline_s > self.interval_s:
            raise ConfigError(
                f"tick_deadline_s ({self.tick_deadline_s}) > interval_s ({self.interval_s})")
        # client-go leaderelection: LeaseDuration > RenewDeadline > RetryPeriod * JitterFactor.
        if not self.lease_duration_s > self.renew_deadline_s > self.retry_period_s:
            raise ConfigError("lease_duration_s > renew_deadline_s > retry_period_s must hold")
        if (not isinstance(self.feature_max, list | tuple) or len(self.feature_max) != 6
                or any(isinstance(v, bool) or not isinstance(v, int | float) or not v > 0
                       or not math.isfinite(v) for v in self.feature_max)):
            raise ConfigError("feature_max: expected 6 positive numbers (one per node feature), "
                              f"got {self.feature_max!r}")
        self.feature_max = tuple(float(v) for v in self.feature_max)
        value = self.graph_max_payload_bytes
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"graph_max_payload_bytes: expected a positive integer, "
                              f"got {value!r}")

    def _check_services(self) -> None:
        if not isinstance(self.services, dict):
            raise ConfigError("services: expected a mapping of Deployment name -> "
                              f"{{min_replicas, max_replicas}}, got {self.services!r}")
        out = {}
        for name, limits in self.services.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"services: expected Deployment names, got {name!r}")
            if isinstance(limits, ServiceLimits):
                out[name] = limits
                continue
            try:
                out[name] = ServiceLimits.from_dict(limits)
            except ConfigError as exc:
                raise ConfigError(f"services.{name}: {exc}") from None
            except TypeError as exc:
                raise ConfigError(f"services.{name}: {exc}") from None
        self.services = out

    def _check_endpoints(self) -> None:
        for name in ("kiali", "prometheus", "mlflow"):
            value = getattr(self, name)
            if isinstance(value, dict):
                value = _nested(name, EndpointConfig, value)
                setattr(self, name, value)
            if not isinstance(value, EndpointConfig):
                raise ConfigError(f"{name}: expected a mapping (url, token, token_file, "
                                  f"ca_bundle, verify, timeout_s), got {value!r}")

    def redacted(self) -> dict[str, Any]:
        """`to_dict` with every token masked (what the start log line shows)."""
        out = self.to_dict()
        for name in ("kiali", "prometheus", "mlflow"):
            if out[name]["token"]:
                out[name]["token"] = "***"
        return out

    def _check_choices(self) -> None:
        if not isinstance(self.graph_scaleup, bool):
            raise ConfigError(f"graph_scaleup: expected true or false, got {self.graph_scaleup!r}")
        for name in ("namespace", "mode", "model", "model_sha256", "source", "lease_name",
                     "identity"):
            _string(name, getattr(self, name))
        if not self.namespace:
            raise ConfigError("namespace: must not be empty")
        if isinstance(self.dial, bool) or not isinstance(self.dial, int | float):
            raise ConfigError(f"dial: expected a number in [0, 1], got {self.dial!r}")
        try:
            self.dial = check_dial(self.dial)
        except ValueError as exc:
            raise ConfigError(f"dial: {exc}") from None
        if self.mode not in MODES:
            raise ConfigError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.source not in SOURCES:
            raise ConfigError(f"source: expected one of {SOURCES}, got {self.source!r}")

    def _check_hpa(self) -> None:
        if isinstance(self.hpa, dict):
            self.hpa = _nested("hpa", HPAConfig, self.hpa)
        if not isinstance(self.hpa, HPAConfig):
            raise ConfigError(f"hpa: expected a mapping, got {self.hpa!r}")
        if self.hpa.target_utilization is None:
            raise ConfigError("hpa.target_utilization: the scaler's rule needs a CPU target")
        if isinstance(self.model_guard, dict):
            self.model_guard = _nested("model_guard", ModelGuardConfig, self.model_guard)
        if not isinstance(self.model_guard, ModelGuardConfig):
            raise ConfigError(f"model_guard: expected a mapping, got {self.model_guard!r}")

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
        if isinstance(data, dict):  # nested objects: their errors name the outer field too
            data = dict(data)
            for name, kind in (("hpa", HPAConfig), ("model_guard", ModelGuardConfig),
                               ("kiali", EndpointConfig),
                               ("prometheus", EndpointConfig), ("mlflow", EndpointConfig)):
                if isinstance(data.get(name), dict):
                    data[name] = _nested(name, kind, data[name])
        try:
            return super().from_dict(data)
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:  # a type no check foresaw
            raise ConfigError(f"ScalerConfig: {exc}") from None

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


def _nested(name: str, kind: type[JsonConfig], data: dict[str, Any]) -> Any:
    """`kind.from_dict(data)` with any error naming `name` first (``kiali.timeout_s: ...``)."""
    try:
        return kind.from_dict(data)
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{name}.{exc}" if isinstance(exc, ConfigError) and
                          not str(exc).startswith(kind.__name__) else f"{name}: {exc}") from None


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
