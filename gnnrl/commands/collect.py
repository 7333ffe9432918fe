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
import sys
from typing import TYPE_CHECKING

from gnnrl.config import ConfigError

if TYPE_CHECKING:
    from gnnrl.data.collector import CollectConfig


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


def run(args: argparse.Namespace) -> int:
    from gnnrl.data.collect_job import CollectJob, collect_dataset, job_source
    from gnnrl.data.duration import parse_duration
    from gnnrl.data.errors import WriterBusyError

    try:
        job = CollectJob(
            source=args.source, namespace=args.namespace,
            url=args.kiali_url if args.source == "kiali" else args.prometheus_url,
            token_file=args.token_file, ca_bundle=args.ca_bundle, insecure=args.insecure,
            timeout_s=parse_duration(args.timeout), window_s=parse_duration(args.window),
            with_kubernetes=args.with_kubernetes, interval_s=parse_duration(args.interval),
            count=args.count,
            duration_s=parse_duration(args.duration) if args.duration else None,
            flush_every=args.flush_every, seed=args.seed, app=args.app, trace=args.trace,
            peak_rps=args.peak_rps, policy=args.policy, realtime=args.realtime)
        source = job_source(job)
    except (ValueError, ConfigError) as exc:
        print(f"gnnrl collect: error: {exc}", file=sys.stderr)
        return 2

    def announce(config: CollectConfig) -> None:
        print(f"gnnrl collect: {config.ticks} snapshots from {args.source} every "
              f"{args.interval} into {args.out} (SIGTERM or Ctrl-C stops cleanly)",
              file=sys.stderr, flush=True)

    try:
        result = collect_dataset(job, source, args.out, on_start=announce,
                                 progress=not args.quiet and sys.stderr.isatty())
    except WriterBusyError as exc:
        print(f"gnnrl collect: error: {exc}", file=sys.stderr)
        return 2
    if result.stopped_by:
        print(f"gnnrl collect: {result.stopped_by} received: flushed and stopped",
              file=sys.stderr)
    print(f"collected into {args.out}")
    for line in result.summary.lines():
        print("  " + line)
    failure = result.failure()
    if failure:
        print(f"gnnrl collect: error: {failure}", file=sys.stderr)
        return 1
    return 0
