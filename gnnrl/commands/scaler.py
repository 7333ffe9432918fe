"""Run the in-cluster scaler: observe -> decide -> guard -> apply (shadow or active mode).

Examples:
  # closed-loop demo on one machine: the simulator is the cluster, HPA rule only; stops
  # after 240 ticks (one simulated hour of 15 s ticks) unless --ticks says otherwise
  gnnrl scaler run --sim --mode shadow --log-format text
  gnnrl scaler run --sim --mode active --ticks 200

  # the same at the pace of a real cluster (one tick per interval, here 1 s)
  gnnrl scaler run --sim --mode active --pace --interval 1s --ticks 30

  # the same with the shipped model and injected API faults, printing a summary
  gnnrl scaler run --sim --mode active --ticks 500 --model gnnrl/assets/models/default \\
      --faults '{"conflict": 0.05, "throttle": 0.05, "nan_metrics": 0.02}'

  # in a cluster (what gnnrl/manifests/deployment.yaml runs): shadow mode first
  gnnrl scaler run --config /etc/gnnrl/scaler.json --namespace shop --mode shadow \\
      --model models:/gnnrl-scaler@champion --source kiali \\
      --kiali-url http://kiali.istio-system:20001/kiali

  # then active, with the same config
  gnnrl scaler run --config /etc/gnnrl/scaler.json --mode active

Metrics, /healthz and /readyz are served on --metrics-port (default from the config, 9090).
The process exits 2 on an invalid configuration, app spec or --faults, with one line naming
the field or file (docs/reliability.md S18). See docs/scaler.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from gnnrl.config import ConfigError

if TYPE_CHECKING:
    from gnnrl.scaler.loop import Cluster
    from gnnrl.sources.kiali import KialiClient
    from gnnrl.sources.prometheus import PrometheusSource

#: ticks of a `--sim` run without --ticks: one simulated hour of 15 s ticks
SIM_DEFAULT_TICKS = 240


def parse_duration(text: str) -> float:
    """'15s', '1m', '500ms', '2h' or a plain number of seconds -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15s, 1m, 500ms)")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m[2] or "s"]
    return float(m[1]) * scale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run"], help="what to do (run the loop)")
    parser.add_argument("--config", help="scaler config file (JSON or YAML; ScalerConfig)")
    parser.add_argument("--namespace", help="namespace of the Deployments")
    parser.add_argument("--model", help="models:/NAME@ALIAS, a model folder, or '' for the "
                                        "HPA rule only")
    parser.add_argument("--mode", choices=["shadow", "active"], help="shadow writes nothing")
    parser.add_argument("--interval", type=parse_duration, help="tick interval (e.g. 15s)")
    parser.add_argument("--source", choices=["kiali", "prometheus"], help="traffic graph source")
    parser.add_argument("--kiali-url", default=os.environ.get("GNNRL_KIALI_URL"))
    parser.add_argument("--prometheus-url", default=os.environ.get("GNNRL_PROMETHEUS_URL"))
    parser.add_argument("--mlflow-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="MLflow tracking URI (default: mlflow.url of the config, or "
                             "MLFLOW_TRACKING_URI)")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster ServiceAccount)")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics /healthz /readyz")
    parser.add_argument("--identity", help="Lease holder identity (default: hostname)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (1: a small model on a CPU-limited pod "
                             "is fastest single-threaded)")
    parser.add_argument("--log-format", choices=["json", "text"], default="json",
                        help="json: one object per line; text: one readable line per tick "
                             "(per service current -> desired -> guarded, source, skip "
                             "reason)")
    parser.add_argument("--log-level", default="INFO")
    sim = parser.add_argument_group("simulator as the cluster (--sim)")
    sim.add_argument("--sim", action="store_true", help="drive the simulator, not a cluster")
    sim.add_argument("--app", default="onlineboutique", help="app spec (built-in or path)")
    sim.add_argument("--ticks", type=int,
                     help=f"stop after this many ticks (--sim default: {SIM_DEFAULT_TICKS}, "
                          "one simulated hour of 15 s ticks; without --sim: never)")
    sim.add_argument("--faults", help="SimFaults as JSON, e.g. '{\"conflict\": 0.05}'")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--pace", "--realtime", dest="pace", action="store_true",
                     help="with --sim: run in real time, one tick per interval (default: "
                          "as fast as the CPU allows)")


def _config(args: argparse.Namespace, sim_limits: dict[str, tuple[int, int]] | None):
    from gnnrl.scaler.config import ScalerConfig, load_config

    overrides = {"namespace": args.namespace, "model": args.model, "mode": args.mode,
                 "interval_s": args.interval, "source": "sim" if args.sim else args.source,
                 "metrics_port": args.metrics_port, "identity": args.identity}
    if args.config:
        cfg = load_config(args.config, **overrides)
    else:
        data = {k: v for k, v in overrides.items() if v is not None}
        cfg = ScalerConfig.from_dict(data)
    if sim_limits is not None and not cfg.services:
        cfg = cfg.replace(services={n: {"min_replicas": lo, "max_replicas": hi}
                                    for n, (lo, hi) in sim_limits.items()})
    return cfg


def _endpoint(cfg, name: str, url: str | None):
    """The `EndpointConfig` `name` of `cfg` with the command line's URL (it wins)."""
    endpoint = getattr(cfg, name)
    if url:
        endpoint = endpoint.replace(url=url)
    for field in ("ca_bundle", "token_file"):
        path = getattr(endpoint, field)
        if path and not os.path.isfile(path):
            raise ConfigError(f"{name}.{field}: no such file {path}")
    return endpoint


def _graph_source(args: argparse.Namespace, cfg, api_client):
    """The graph callable of `KubeCluster`: a `time.monotonic()` deadline -> the traffic
    graph (Kiali or Prometheus, merged with the Kubernetes source), every request of it
    ending by the deadline and every answer capped at `graph_max_payload_bytes`."""
    from gnnrl.sources.kubernetes import KubernetesSource

    kube = KubernetesSource(api_client, namespace=cfg.namespace,
                            request_timeout_s=cfg.api_timeout_s)
    flag = "--kiali-url (or GNNRL_KIALI_URL)" if cfg.source == "kiali" else \
        "--prometheus-url (or GNNRL_PROMETHEUS_URL)"
    endpoint = _endpoint(cfg, cfg.source, args.kiali_url if cfg.source == "kiali"
                         else args.prometheus_url)
    if not endpoint.url:
        raise ConfigError(f"{cfg.source}.url: required with --source {cfg.source} "
                          f"(or give {flag})")
    settings = {**endpoint.source_settings(), "max_payload_bytes": cfg.graph_max_payload_bytes}
    if cfg.source == "kiali":
        from gnnrl.sources.kiali import KialiClient

        traffic: KialiClient | PrometheusSource = KialiClient(endpoint.url, **settings)
    else:
        from gnnrl.sources.prometheus import PrometheusSource

        traffic = PrometheusSource(endpoint.url, **settings)

    def graph(deadline: float):
        return traffic.snapshot(cfg.namespace, deadline=deadline).merged(kube.snapshot())

    return graph


class ConfigWatcher:
    """Re-reads --config when the file changes (a ConfigMap update reaches the mounted file
    within the kubelet's sync period): a valid new config is applied (targets disabled by a
    403 are retried, S14); an invalid one is logged and the running config kept."""

    def __init__(self, args: argparse.Namespace, scaler) -> None:
        self.args, self.scaler = args, scaler
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = os.stat(self.args.config)
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    def check(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self.stamp:
            return
        self.stamp = stamp
        log = logging.getLogger("gnnrl.scaler")
        try:
            new = _config(self.args, None)
        except ConfigError as exc:
            log.error("config %s changed but is invalid, keeping the running one: %s",
                      self.args.config, exc)
            self.scaler.events.emit("", "InvalidConfig", f"{self.args.config}: {exc}; the "
                                    "last valid configuration stays in use", warning=True)
            return
        if new.model != self.scaler.config.model or new.namespace != self.scaler.config.namespace:
            log.warning("config change of model/namespace needs a restart; other fields applied")
            new = new.replace(model=self.scaler.config.model,
                              namespace=self.scaler.config.namespace)
        self.scaler.update_config(new)
        log.info("config reloaded from %s", self.args.config)


def run(args: argparse.Namespace) -> int:
    from gnnrl.scaler import logs

    logs.configure(args.log_format, args.log_level)
    from gnnrl.kube.errors import K8sError

    from gnnrl.sim import AppSpecError, TraceError

    try:
        return _run(args)
    except (ConfigError, AppSpecError, TraceError) as exc:
        print(f"gnnrl scaler: invalid configuration: {_one_line(exc)}", file=sys.stderr)
        return 2
    except K8sError as exc:  # e.g. the Deployments cannot be listed at start (RBAC, API down)
        print(f"gnnrl scaler: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: Exception) -> str:
    """The message on one line (a YAML parser's message spans several)."""
    return " ".join(str(exc).split())


def _faults(text: str | None):
    from gnnrl.scaler.sim_cluster import SimFaults

    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--faults: not JSON ({exc.msg} at character {exc.pos}); "
                          'e.g. \'{"conflict": 0.05}\'') from None
    try:
        return SimFaults.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"--faults: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--faults: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from gnnrl.scaler.clock import FakeClock, MonotonicClock
    from gnnrl.scaler.events import EventRecorder
    from gnnrl.scaler.loop import Scaler, run_forever
    from gnnrl.scaler.metrics import HealthServer, ScalerMetrics
    from gnnrl.scaler.model_source import ModelSource, RegistryResolver, mlflow_client_env

    if args.ticks is not None and args.ticks < 1:
        raise ConfigError(f"--ticks: expected a positive number of ticks, got {args.ticks}")
    real = MonotonicClock()
    elector = None
    if args.sim:
        from gnnrl.scaler.sim_cluster import SimCluster

        from gnnrl.sim import load_app_spec

        clock = real if args.pace else FakeClock(0.0)
        faults = _faults(args.faults)
        interval = args.interval or 15.0
        sim_cluster = SimCluster(load_app_spec(args.app), clock, interval_s=interval,
                                 faults=faults, seed=args.seed)
        cluster: Cluster = sim_cluster
        cfg = _config(args, sim_cluster.limits)
        events = EventRecorder(None, cfg.namespace)
    else:
        import kubernetes

        from gnnrl.scaler.kube import KubeCluster
        from gnnrl.scaler.leader import LeaseElector
        from gnnrl.kube.client import load_api_client

        clock = real
        cfg = _config(args, None)
        api = load_api_client(args.kubeconfig)
        api.configuration.retries = False  # our retry policy is the only one (apply.py)
        assert isinstance(api, kubernetes.client.ApiClient)
        cluster = KubeCluster(api, cfg.namespace, cfg.api_timeout_s,
                              graph=_graph_source(args, cfg, api))
        identity = cfg.identity or socket.gethostname()
        active = cfg.mode == "active"
        events = EventRecorder(api if active else None, cfg.namespace, identity)
        if active:  # shadow replicas write nothing, not even the Lease
            elector = LeaseElector(api, cfg.namespace, cfg.lease_name, identity, clock,
                                   cfg.lease_duration_s, cfg.renew_deadline_s,
                                   cfg.api_timeout_s)
    models = None
    if cfg.model:
        if args.torch_threads > 0:
            import torch

            torch.set_num_threads(args.torch_threads)
        mlflow = _endpoint(cfg, "mlflow", args.mlflow_uri)
        env = mlflow_client_env(mlflow.token, mlflow.token_file, mlflow.ca_bundle,
                                mlflow.verify, mlflow.timeout_s)
        models = ModelSource(cfg.model, cfg.model_sha256, clock, poll_s=cfg.model_poll_s,
                             resolver_factory=lambda: RegistryResolver(mlflow.url or None,
                                                                       env))
    metrics = ScalerMetrics()
    scaler = Scaler(cfg, cluster, clock, models=models, metrics=metrics, events=events,
                    elector=elector)
    stop = threading.Event()
    server = None
    if not args.sim or args.pace:
        server = HealthServer(metrics, scaler.live, lambda: scaler.started,
                              port=cfg.metrics_port).start()

    def _stop(signum, frame):  # SIGTERM from the kubelet: finish the tick, exit 0
        stop.set()
        real.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scaler.start()
    if elector is not None:  # renewals on their own thread; the loop only checks is_leader()
        from gnnrl.scaler.leader import renew_in_background

        renew_in_background(elector, cfg.retry_period_s, stop,
                            lambda leader: metrics.leader.set(1 if leader else 0))
    watcher = ConfigWatcher(args, scaler) if args.config else None
    summary: dict[str, Any] = {"ticks": 0, "writes": 0, "rule_ticks": 0, "max_latency_ms": 0.0}

    def on_tick(report):
        if watcher is not None:
            watcher.check()
        summary["ticks"] += 1
        summary["writes"] += len(report.writes())
        summary["rule_ticks"] += report.mode == "rule"
        summary["max_latency_ms"] = max(summary["max_latency_ms"], report.latency_s * 1000)

    try:
        ticks = args.ticks if args.ticks is not None else (
            SIM_DEFAULT_TICKS if args.sim else None)
        run_forever(scaler, clock, stop.is_set, max_ticks=ticks, on_tick=on_tick,
                    renew=False)
    finally:
        if server is not None:
            server.stop()
    summary["max_latency_ms"] = round(summary["max_latency_ms"], 2)
    summary["fallback_reason"] = scaler.fallback.reason
    print(json.dumps(summary))
    return 0
