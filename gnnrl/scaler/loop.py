"""The scaler's tick: observe -> decide -> guard -> apply-if-changed (Kubernetes' HPA
`reconcileAutoscaler` shape, pkg/controller/podautoscaler/horizontal.go).

`Scaler.tick` wires the separately tested steps and holds the state between ticks: the
guard's per-service history, the fallback state machine, the slot mapping, the services
that answered 403 and the hands-off set. It never raises for a cluster or model failure;
each one is a metric, a log line and, where an operator should see it, an Event.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gnnrl.config import ConfigError
from gnnrl.core.envs.obs_extras import LoadHistory
from gnnrl.core.envs.dynamic_graph_space import (
    DynamicGraphConfig,
    DynamicGraphSpace,
    TooManyServicesError,
)
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.scaler.apply import ApplyResult, apply_scale, read_with_retry
from gnnrl.scaler.clock import Clock
from gnnrl.scaler.config import ScalerConfig
from gnnrl.baselines.graph_scaleup import GraphLoad
from gnnrl.scaler.decide import PolicyOutputError, hpa_rule, policy_desired
from gnnrl.scaler.events import EventRecorder
from gnnrl.scaler.fallback import FallbackState, Transition
from gnnrl.scaler.guard import GuardOutcome, ServiceHistory, guard, history_keep_s
from gnnrl.scaler.leader import LeaseElector
from gnnrl.scaler.metrics import ScalerMetrics
from gnnrl.scaler.model_source import LoadedModel, ModelSource
from gnnrl.scaler.observe import (
    ClusterState,
    ScaleState,
    ServiceState,
    build_observation,
    check_observation,
)
from gnnrl.kube.errors import K8sError, K8sForbidden, K8sNotFound

log = logging.getLogger("gnnrl.scaler")


class Cluster(Protocol):
    """What the loop needs from "the cluster" (`KubeCluster`, `SimCluster`)."""

    def deployment_names(self) -> list[str]: ...

    def read_scale(self, name: str) -> ScaleState: ...

    def read_service(self, scale: ScaleState) -> ServiceState: ...

    def graph(self, timeout_s: float) -> GraphSnapshot | None: ...

    def write_scale(self, scale: ScaleState, replicas: int) -> ScaleState: ...


@dataclasses.dataclass
class ServiceTick:
    """One service in one tick: `current` read, `desired` decided (None = held without a
    decision), the `guarded` count, its `source` ("model" | "rule"), a `skipped` reason and
    the write's `result` (None = no write attempted)."""

    current: int
    desired: int | None = None
    guarded: int | None = None
    source: str = ""
    skipped: str = ""
    reasons: tuple[str, ...] = ()
    result: ApplyResult | None = None


@dataclasses.dataclass
class TickReport:
    """What one tick did (also logged as one JSON line). `mode`: "model", "rule", or "hold"
    (the model in charge gave an unusable output: nothing is written that tick, S5).
    `healthy`: the model was loaded, saw a valid observation and gave a valid output."""

    t: float
    mode: str
    fallback_reason: str | None
    invalid_observation: str | None
    services: dict[str, ServiceTick]
    transition: Transition | None
    healthy: bool = False
    latency_s: float = 0.0

    def writes(self) -> dict[str, int]:
        """service -> replicas written this tick."""
        return {n: s.result.replicas for n, s in self.services.items()
                if s.result is not None and s.result.status == "written"}


class Scaler:
    """The in-cluster scaler for one namespace.

    Args:
        config: validated `ScalerConfig`.
        cluster: reads and the scale write (`KubeCluster` or `SimCluster`).
        clock: every timestamp and wait.
        models: the model source (None: HPA rule only).
        metrics: Prometheus metrics (a fresh registry when None).
        events: Kubernetes Events (records nothing when None).
        elector: leader election (None: this replica may always write, e.g. `--sim`).
    """

    def __init__(self, config: ScalerConfig, cluster: Cluster, clock: Clock,
                 models: ModelSource | None = None, metrics: ScalerMetrics | None = None,
                 events: EventRecorder | None = None, elector: LeaseElector | None = None,
                 graph_config: DynamicGraphConfig | None = None) -> None:
        self.config, self.cluster, self.clock = config, cluster, clock
        self.models, self.elector = models, elector
        self.metrics = metrics or ScalerMetrics()
        self.events = events or EventRecorder(None, config.namespace)
        self.space = DynamicGraphSpace(graph_config)
        #: received req/s of the last ticks (the observation's load-trend columns)
        self.history = LoadHistory()
        self.graph = GraphLoad()  # graph-wide scale-up memory (edge calls per request)
        self.fallback = FallbackState(config.fallback_after_failures,
                                      config.recover_after_healthy)
        self.histories: dict[str, ServiceHistory] = {}
        self.forbidden: set[str] = set()
        self.hands_off: set[str] = set()
        self.no_metrics: set[str] = set()
        self.last_tick_at: float | None = None
        self.started_at: float | None = None
        self.started = False
        self._model_id: tuple[str, str, str] | None = None
        self.metrics.set_fallback(self.fallback.reason)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Check the configuration against the cluster (S18) and become ready.

        Raises:
            ConfigError: no service configured, or one that is not a Deployment of the
                namespace.
            K8sError: the Deployments cannot be listed at all.
        """
        if not self.config.services:
            raise ConfigError("services: empty; list the Deployments to scale with their "
                              "min_replicas/max_replicas (see gnnrl/manifests/configmap.yaml)")
        self.config.check_known_services(self.cluster.deployment_names())
        if self.models is not None:
            self._poll_model()
        self.started = True
        self.started_at = self.clock.monotonic()
        log.info("scaler started", extra={"fields": {
            "namespace": self.config.namespace, "mode": self.config.mode,
            "services": sorted(self.config.services), "model": self.config.model or None,
            "config": self.config.redacted()}})

    def update_config(self, config: ScalerConfig) -> None:
        """Apply a changed configuration; targets disabled by a 403 are retried (S14)."""
        if config != self.config:
            self.forbidden.clear()
            self.config = config

    def live(self) -> bool:
        """Liveness: a tick *finished* within the last three intervals (counted from the
        start until the first one finishes; True before the start). A tick stuck in a call
        makes it False, so the kubelet restarts a wedged pod, and only then: every call of a
        tick is bounded by the tick's deadline."""
        last = self.last_tick_at if self.last_tick_at is not None else self.started_at
        if last is None:
            return True
        return self.clock.monotonic() - last <= 3 * self.config.interval_s

    # ------------------------------------------------------------------ the tick
    def tick(self) -> TickReport:
        """One observe -> decide -> guard -> apply-if-changed pass. Never raises for
        cluster, metrics or model failures."""
        started = time.perf_counter()  # latency is measured, not simulated
        t0 = self.clock.monotonic()
        deadline = t0 + self.config.tick_deadline_s
        if self.models is not None:
            self._poll_model()
        state = self._observe(deadline)
        model_in_charge = self.fallback.mode == "model"
        desired_by_model, healthy, reason, invalid = self._decide_model(state)
        transition = self.fallback.record(healthy, reason)
        if transition is not None:
            self._on_transition(transition)
        self.metrics.set_fallback(self.fallback.reason)  # the reason may change in rule mode
        use_model = self.fallback.mode == "model" and desired_by_model is not None
        # S5: the model in charge answered outside the action space -> hold this tick
        hold = model_in_charge and reason == "model_output"
        report = TickReport(t0, "hold" if hold else "model" if use_model else "rule",
                            self.fallback.reason, invalid, {}, transition, healthy)
        for name, svc in state.services.items():
            if hold:
                report.services[name] = ServiceTick(svc.replicas, skipped="model_output")
                self.metrics.skipped.labels(name, "model_output").inc()
                continue
            report.services[name] = self._service_tick(
                name, svc, desired_by_model if use_model else None, t0, deadline)
        self.last_tick_at = self.clock.monotonic()
        report.latency_s = time.perf_counter() - started
        self.metrics.tick.observe(report.latency_s)
        self._log(report)
        return report

    # ------------------------------------------------------------------ steps
    def _poll_model(self) -> None:
        assert self.models is not None
        self.models.poll()
        current = self.models.current
        ident = (current.uri, current.version, current.sha256) if current else None
        if ident != self._model_id and current is not None:
            self._on_new_model(current)
        self._model_id = ident
        if current is None and self.models.error is not None:
            t = self.fallback.force(self.models.error.reason)
            if t is not None:
                self._on_transition(t)
            self.metrics.set_fallback(self.fallback.reason)

    def _on_new_model(self, model: LoadedModel) -> None:
        self.metrics.model.info({"uri": model.uri, "version": model.version,
                                 "sha256": model.sha256})
        reset = getattr(model.policy, "reset_memory", None)
        if callable(reset):
            reset()
        remap = getattr(model.policy, "update_node_mapping", None)
        if callable(remap):
            remap(self.space.slot_names())
        log.info("model loaded", extra={"fields": {"uri": model.uri, "version": model.version}})
        trained = getattr(model.policy, "trained_interval_s", None)
        if trained is not None and abs(float(trained) - self.config.interval_s) > 1e-9:
            # the interval is an input, and the load trends look 1, 4 and 16 intervals back:
            # at another interval the model reads values it never saw in training
            message = (f"model {model.version} was trained at a {float(trained):g} s control "
                       f"interval; this scaler ticks every {self.config.interval_s:g} s, so "
                       "its interval input and load trends are outside what it learned: run "
                       f"it in shadow mode and compare, or set interval_s: {float(trained):g}")
            log.warning(message)
            self.events.emit("", "ModelIntervalMismatch", message, warning=True)

    def _observe(self, deadline: float) -> ClusterState:
        services: dict[str, ServiceState] = {}
        for name in sorted(self.config.services):
            if name in self.forbidden:
                self.metrics.skipped.labels(name, "forbidden").inc()
                continue
            try:
                scale = read_with_retry(self.cluster, name, self.clock, deadline,
                                        self.config.api_backoff_s)
                services[name] = self.cluster.read_service(scale)
            except K8sForbidden as exc:
                self._forbid(name, exc)
            except K8sNotFound:  # the Deployment was deleted: nothing to scale this tick
                self.metrics.skipped.labels(name, "not_found").inc()
            except K8sError as exc:
                self.metrics.api_errors.labels(type(exc).__name__).inc()
                self.metrics.skipped.labels(name, "read_failed").inc()
                log.warning("cannot read %s: %s", name, exc)
            except (ValueError, ArithmeticError) as exc:  # e.g. an unparsable quantity
                self.metrics.skipped.labels(name, "read_failed").inc()
                log.warning("cannot use what was read for %s: %s", name, exc)
        return ClusterState(services, self._graph(deadline))

    def _graph(self, deadline: float) -> GraphSnapshot | None:
        """The traffic graph, fetched within the tick: the source gets what is left of the
        deadline minus one API timeout, kept for the writes, so a slow or throttling graph
        source (an outage: exactly when the HPA rule takes over) never eats the tick and
        the rule's writes still happen."""
        budget = deadline - self.clock.monotonic() - self.config.api_timeout_s
        if budget <= 0:
            log.warning("graph skipped: no time left in the tick (%.2f s before the deadline, "
                        "one API timeout kept for the writes)", deadline - self.clock.monotonic())
            self.metrics.graph_errors.labels("deadline").inc()
            return None
        try:
            return self.cluster.graph(budget)
        except Exception as exc:  # a failed graph source degrades to the rule, never crashes
            log.warning("graph source failed: %s", exc)
            self.metrics.graph_errors.labels(type(exc).__name__).inc()
            return None

    def _forbid(self, name: str, exc: K8sError) -> None:
        self.forbidden.add(name)
        self.metrics.api_errors.labels("K8sForbidden").inc()
        self.events.emit(name, "FailedRescale", f"RBAC forbids {exc}; {name} is skipped until "
                         "the configuration changes", warning=True)

    def _current_model(self) -> LoadedModel | None:
        return self.models.current if self.models is not None else None

    def _decide_model(self, state: ClusterState
                      ) -> tuple[dict[str, int] | None, bool, str | None, str | None]:
        """(model's desired counts or None, healthy, fallback reason, invalid reason)."""
        model = self._current_model()
        try:
            now = self.clock.now()
            obs, changed = build_observation(
                state, self.space, self.config,
                now.hour * 3600.0 + now.minute * 60.0 + now.second, self.history)
        except TooManyServicesError as exc:
            log.warning("observation: %s", exc)
            self.metrics.invalid.labels("too_many_services").inc()
            return None, False, "observation_invalid", "too_many_services"
        if changed and model is not None:
            remap = getattr(model.policy, "update_node_mapping", None)
            if callable(remap):
                remap(self.space.slot_names())
        invalid = check_observation(obs, self.config.feature_max)
        if model is None:
            error = self.models.error if self.models is not None else None
            return None, False, error.reason if error else "model_missing", invalid
        if invalid is not None:  # S4: the model is not called at all
            self.metrics.invalid.labels(invalid).inc()
            return None, False, "observation_invalid", invalid
        current = {n: s.replicas for n, s in state.services.items()}
        try:
            names = self.space.slot_names()
            desired = policy_desired(model.policy, obs, names, current, self.config.dial)
            if self.config.graph_scaleup:
                need = self.graph.needed_replicas(obs, names)
                for i, name in enumerate(names):
                    if name is not None and name in desired and need[i] > desired[name]:
                        desired[name] = int(need[i])
            return desired, True, None, None
        except PolicyOutputError as exc:
            log.warning("model output refused: %s", exc)
        except Exception as exc:  # the model raised: same as an unusable output (S5)
            log.warning("model failed: %s: %s", type(exc).__name__, exc)
        return None, False, "model_output", None

    def _service_tick(self, name: str, svc: ServiceState, by_model: dict[str, int] | None,
                      now: float, deadline: float) -> ServiceTick:
        cfg = self.config
        current = svc.replicas
        out = ServiceTick(current)
        self.metrics.current.labels(name).set(current)
        if current == 0:  # S9: scaled to 0 by hand -> hands off, logged once
            if name not in self.hands_off:
                self.hands_off.add(name)
                log.warning("%s is at 0 replicas: scaling disabled until it is scaled up", name)
            self.metrics.skipped.labels(name, "scaling_disabled").inc()
            out.skipped = "scaling_disabled"
            return out
        self.hands_off.discard(name)
        history = self.histories.setdefault(name, ServiceHistory())
        keep = history_keep_s(cfg)
        if not history.seeded():  # S15: no scale-down in the first window after a start
            history.record_recommendation(now, current, keep)
        if by_model is not None and name in by_model:
            desired, out.source = by_model[name], "model"
        else:
            rule = hpa_rule(current, svc.pods, cfg.hpa)
            out.source = "rule"
            if rule.replicas is None:  # S7: unable to compute -> hold, no write
                self._no_metrics(name)
                out.skipped = "no_metrics"
                self.metrics.skipped.labels(name, "no_metrics").inc()
                return out
            desired = rule.replicas
        self.no_metrics.discard(name)
        outcome = guard(desired, current, cfg.limits(name), history, now, cfg,
                        model=out.source == "model")
        history.record_recommendation(now, desired, keep)
        out.desired, out.guarded, out.reasons = desired, outcome.replicas, outcome.reasons
        direction = ("up" if outcome.replicas > current else
                     "down" if outcome.replicas < current else "hold")
        self.metrics.decisions.labels(name, out.source, direction).inc()
        self.metrics.desired.labels(name).set(outcome.replicas)
        if outcome.replicas == current:  # S19: nothing to write
            return out
        out.skipped = self._may_write(deadline)
        if out.skipped:
            self.metrics.skipped.labels(name, out.skipped).inc()
            return out
        out.result = self._write(name, svc, desired, out.source, outcome, history, now,
                                 deadline)
        return out

    def _may_write(self, deadline: float) -> str:
        if self.config.mode != "active":
            return "shadow"  # S17: decide and export, never write
        if self.elector is not None and not self.elector.is_leader():
            return "not_leader"  # S16
        if self.clock.monotonic() >= deadline:
            return "deadline"
        return ""

    def _write(self, name: str, svc: ServiceState, desired: int, source: str,
               outcome: GuardOutcome, history: ServiceHistory, now: float,
               deadline: float) -> ApplyResult:
        cfg = self.config

        def recompute(fresh: ScaleState) -> int:  # S11: re-decide from the fresh state
            if fresh.replicas == 0:
                return 0  # scaled to 0 meanwhile: hands off
            if source == "model":  # the same move, from the fresh count
                again = fresh.replicas + (desired - svc.replicas)
            else:
                try:
                    pods = self.cluster.read_service(fresh).pods
                except K8sError:
                    return fresh.replicas
                rule = hpa_rule(fresh.replicas, pods, cfg.hpa)
                if rule.replicas is None:
                    return fresh.replicas
                again = rule.replicas
            return guard(again, fresh.replicas, cfg.limits(name), history, now, cfg,
                         model=source == "model").replicas

        result = apply_scale(self.cluster, svc.scale, outcome.replicas, recompute, self.clock,
                             deadline, cfg.api_backoff_s)
        if result.status == "written":
            delta = result.replicas - svc.replicas
            history.record_scale_event(now, delta, history_keep_s(cfg))
            direction = "up" if delta > 0 else "down"
            self.metrics.applied.labels(name, direction).inc()
            why = f" ({', '.join(outcome.reasons)})" if outcome.reasons else ""
            by = "model" if self.fallback.mode == "model" else "HPA rule"
            self.events.emit(name, "SuccessfulRescale", f"New size: {result.replicas}; was "
                             f"{svc.replicas}; decided by the {by}{why}")
        elif result.status == "forbidden":
            assert result.error is not None
            self._forbid(name, result.error)
        elif result.status != "unchanged":
            if result.error is not None:
                self.metrics.api_errors.labels(type(result.error).__name__).inc()
            if not isinstance(result.error, K8sNotFound):
                self.events.emit(name, "FailedRescale", f"could not scale to {outcome.replicas}: "
                                 f"{result.status}: {result.error}", warning=True)
        return result

    def _no_metrics(self, name: str) -> None:
        if name not in self.no_metrics:
            self.no_metrics.add(name)
            self.events.emit(name, "FailedGetResourceMetric",
                             "unable to compute the replica count: no CPU metrics for any ready "
                             "pod; replicas held", warning=True)

    def _on_transition(self, t: Transition) -> None:
        self.metrics.set_fallback(self.fallback.reason)
        if t.kind == "entered":
            self.events.emit("", "FallbackEntered",
                             f"using the HPA rule: {t.reason}", warning=True)
        else:
            self.events.emit("", "FallbackLeft",
                             f"model healthy for {self.config.recover_after_healthy} ticks; "
                             f"back to the model (was: {t.reason})")

    def _log(self, report: TickReport) -> None:
        fields: dict[str, Any] = {
            "mode": report.mode, "fallback_reason": report.fallback_reason,
            "invalid_observation": report.invalid_observation,
            "latency_ms": round(report.latency_s * 1000, 3),
            "services": {n: {"current": s.current, "desired": s.desired, "guarded": s.guarded,
                             "source": s.source, "skipped": s.skipped or None,
                             "reasons": list(s.reasons) or None,
                             "write": s.result.status if s.result else None}
                         for n, s in report.services.items()}}
        log.info("tick", extra={"fields": fields})


def run_forever(scaler: Scaler, clock: Clock, should_stop: Callable[[], bool],
                max_ticks: int | None = None,
                on_tick: Callable[[TickReport], None] | None = None, renew: bool = True) -> int:
    """Tick every `interval_s` until `should_stop()` (or `max_ticks`). With `renew`, the
    Lease is renewed between ticks every `retry_period_s` (the CLI renews on a thread
    instead: `leader.renew_in_background`). Returns the number of ticks run."""
    cfg = scaler.config
    ticks = 0
    next_tick = clock.monotonic()
    renew = renew and scaler.elector is not None
    while not should_stop() and (max_ticks is None or ticks < max_ticks):
        now = clock.monotonic()
        if renew and scaler.elector is not None:
            scaler.metrics.leader.set(1 if scaler.elector.try_acquire_or_renew() else 0)
        if now >= next_tick:
            try:
                report = scaler.tick()
            except Exception:  # a bug must not crash-loop the pod: log, count, next tick
                log.exception("tick failed")
                scaler.metrics.tick_failures.inc()
                report = None
            ticks += 1
            if on_tick is not None and report is not None:
                on_tick(report)
            next_tick = max(next_tick + cfg.interval_s, clock.monotonic())
        wait = next_tick - clock.monotonic()
        if renew:
            wait = min(wait, cfg.retry_period_s)
        clock.sleep(max(0.0, wait))
    return ticks
