"""Collect graph snapshots (Kiali, Prometheus or the simulator) into a Parquet dataset.

Examples:
  # 20 snapshots from the simulator (no cluster needed; takes about a second)
  gnnrl collect --source sim --count 20 --out data

  # two hours of Kiali snapshots every 30 s, with replicas/CPU from the Kubernetes API
  gnnrl collect --source kiali --namespace onlineboutique \\
      --kiali-url http://kiali.istio-system:20001/kiali --token-file /var/run/secrets/token \\
      --with-kubernetes --interval 30s --duration 2h --out data

  # clusters with Prometheus but no Kiali
  gnnrl collect --source prometheus --namespace shop \\
      --prometheus-url http://prometheus.istio-system:9090 --interval 30s --count 240 --out data

The dataset is ROOT/{nodes,edges,gaps}/date=YYYY-MM-DD/part-*.parquet (see docs/data.md).
An outage writes a `gaps` row; SIGTERM/Ctrl-C flushes what was collected and exits 0.

Exit codes: 0 done (some snapshots stored); 1 no snapshot stored (every tick failed: the
first error is printed) or the dataset could not be written (disk full...: what could not
be stored is a `gaps` row with source `store`); 2 bad arguments or the folder is in use.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from gnnrl.config import ConfigError

if TYPE_CHECKING:
    from gnnrl.data.clock import Clock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnnrl.data.sim_source import POLICIES
    from gnnrl.data.sources import SOURCE_KINDS

    parser.add_argument("--source", required=True, choices=SOURCE_KINDS)
    parser.add_argument("--namespace", help="Kubernetes namespace (kiali, prometheus)")
    parser.add_argument("--kiali-url", help="Kiali web root, e.g. http://kiali:20001/kiali")
    parser.add_argument("--prometheus-url", help="Prometheus base URL")
    parser.add_argument("--token-file", help="bearer token file (read at every request)")
    parser.add_argument("--ca-bundle", help="CA bundle for TLS verification")
    parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
    parser.add_argument("--timeout", default="10s", help="HTTP timeout per attempt")
    parser.add_argument("--window", default="60s",
                        help="rate window of each query (>= the Prometheus scrape "
                             "interval, else rates come back empty)")
    parser.add_argument("--with-kubernetes", action="store_true",
                        help="add replicas/CPU/memory from the Kubernetes API")
    parser.add_argument("--interval", default="30s", help="time between snapshots")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--duration", help="collect for this long, e.g. 2h")
    when.add_argument("--count", type=int, help="number of snapshots")
    parser.add_argument("--out", required=True, help="dataset folder (appended to)")
    parser.add_argument("--flush-every", type=int, default=20,
                        help="snapshots between atomic flushes")
    parser.add_argument("--seed", type=int, default=0, help="seed (retry jitter, sim)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    sim = parser.add_argument_group("--source sim")
    sim.add_argument("--app", default="onlineboutique", help="app spec (name or file)")
    sim.add_argument("--trace", default="diurnal", help="trace kind or replay file")
    sim.add_argument("--peak-rps", type=float, default=150.0, help="trace peak, req/s")
    sim.add_argument("--policy", default="hpa", choices=POLICIES, help="replica policy")
    sim.add_argument("--realtime", action="store_true",
                     help="wait --interval between simulated snapshots (default: no waiting)")


def _source(args: argparse.Namespace, interval_s: float, ticks: int):
    from gnnrl.data.duration import parse_duration
    from gnnrl.data.sim_source import SimSourceConfig
    from gnnrl.data.sources import make_source

    http = {"timeout_s": parse_duration(args.timeout), "retries": 0,  # the collector retries
            "duration_s": round(parse_duration(args.window))}
    if args.token_file:
        http["token_file"] = args.token_file
    if args.insecure or args.ca_bundle:
        http["verify"] = False if args.insecure else args.ca_bundle
    sim = SimSourceConfig(app=args.app, trace=args.trace, peak_rps=args.peak_rps,
                          trace_steps=max(ticks, 2), interval_s=interval_s,
                          policy=args.policy, seed=args.seed,
                          namespace=args.namespace or "sim")
    url = args.kiali_url if args.source == "kiali" else args.prometheus_url
    return make_source(args.source, args.namespace, url=url, http=http,
                       with_kubernetes=args.with_kubernetes, sim=sim)


def run(args: argparse.Namespace) -> int:
    from gnnrl.data.clock import SystemClock, VirtualClock
    from gnnrl.data.collector import CollectConfig, run_collection
    from gnnrl.data.duration import parse_duration
    from gnnrl.data.errors import WriterBusyError

    try:
        interval = parse_duration(args.interval)
        duration = parse_duration(args.duration) if args.duration else None
        config = CollectConfig(interval_s=interval, count=args.count, duration_s=duration,
                               flush_every=args.flush_every, seed=args.seed)
        source = _source(args, interval, config.ticks)
    except (ValueError, ConfigError) as exc:
        print(f"gnnrl collect: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if args.source == "sim" and not args.realtime:
            clock: Clock = VirtualClock(_start_time(interval, args.out))
        else:
            clock = SystemClock(stop)
        print(f"gnnrl collect: {config.ticks} snapshots from {args.source} every "
              f"{args.interval} into {args.out} (SIGTERM or Ctrl-C stops cleanly)",
              file=sys.stderr, flush=True)
        summary = run_collection(source, args.out, config, clock, stop=stop,
                                 progress=not args.quiet and sys.stderr.isatty())
    except WriterBusyError as exc:
        print(f"gnnrl collect: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if received:
        print(f"gnnrl collect: {received[0]} received: flushed and stopped", file=sys.stderr)
    print(f"collected into {args.out}")
    for line in summary.lines():
        print("  " + line)
    if summary.store_error:
        print(f"gnnrl collect: error: the dataset could not be written, collection ended: "
              f"{summary.store_error}", file=sys.stderr)
        return 1
    if summary.stored == 0 and summary.ticks > 0:
        print(f"gnnrl collect: error: no snapshot collected in {summary.ticks} tick(s); "
              f"first error: {summary.first_error or 'none'}", file=sys.stderr)
        return 1
    return 0


def _start_time(interval_s: float, out: str):
    """Simulated time starts now, floored to the interval (snapshots line up with a real
    schedule), and after anything already in `out` (a second run appends, never repeats
    timestamps)."""
    import pandas as pd

    from gnnrl.data.reader import last_timestamp

    start = pd.Timestamp.now(tz="UTC").floor(f"{max(1, int(interval_s))}s")
    last = last_timestamp(out)
    if last is not None and last >= start:
        start = last + pd.Timedelta(seconds=interval_s)
    return start
