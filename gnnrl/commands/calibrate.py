"""Fit an application spec and a traffic trace from collected snapshots.

Examples:
  # the newcomer path: simulated cluster -> snapshots -> calibrated app -> train on it
  gnnrl collect --source sim --count 20 --out data
  gnnrl calibrate data --out app.yaml --trace-out trace.csv
  gnnrl train --app app.yaml --trace trace.csv,diurnal,flash --out runs/mine

  # your cluster, with OnlineBoutique's CPU limits/requests as the base for known services
  gnnrl calibrate data --out app.yaml --trace-out trace.csv --app-base onlineboutique

  # an app that is not OnlineBoutique: no base, state the defaults for what data cannot show
  gnnrl calibrate data --out app.yaml --app-base none --entry web \\
      --default-cpu-request-m 250 --default-cpu-limit-m 500

Prints the fit quality per service (R^2, residuals) and refuses with exit code 3 and the
reason when the data cannot support a fit (too few snapshots, no load variation, R^2 below
--min-r2). Files of the dataset that cannot be read (not Parquet, truncated, a column of
another type) are skipped with one warning line each; exit code 2 when no snapshot is
left, or for bad arguments. See docs/data.md.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="snapshot dataset folder (gnnrl collect --out)")
    parser.add_argument("--out", required=True, help="app spec to write (.yaml or .json)")
    parser.add_argument("--trace-out", help="entry traffic trace to write (CSV t_s,rps)")
    parser.add_argument("--app-base", default="onlineboutique",
                        help="app giving CPU limits/requests, start-up, replica bounds "
                             "(built-in name or spec file; 'none' for defaults only)")
    parser.add_argument("--name", help="name of the calibrated app")
    parser.add_argument("--namespace", help="namespace to calibrate if the data has several")
    parser.add_argument("--entry", help="entry service (default: detected)")
    parser.add_argument("--min-points", type=int, default=8, help="fewest snapshots per fit")
    parser.add_argument("--min-r2", type=float, default=0.8, help="least CPU-fit R^2")
    parser.add_argument("--min-load-cv", type=float, default=0.05,
                        help="least load variation std/mean per service")
    parser.add_argument("--allow-partial", action="store_true",
                        help="keep --app-base values for services that cannot be fitted")
    parser.add_argument("--impute-missing", choices=("zero", "ffill", "median"),
                        help="impute null CPU/replica/traffic values instead of refusing")
    parser.add_argument("--slo-ms", type=float, help="p95 SLO of the output app, ms")
    parser.add_argument("--default-cpu-request-m", type=float, default=100.0,
                        help="CPU request of a service the base does not know, millicores")
    parser.add_argument("--default-cpu-limit-m", type=float, default=200.0,
                        help="CPU limit of a service the base does not know, millicores")
    parser.add_argument("--default-mem-request-mi", type=float, default=64.0,
                        help="memory request of a service the base does not know, MiB")
    parser.add_argument("--default-startup-s", type=float, default=10.0,
                        help="start-up time of a service the base does not know, s")


def run(args: argparse.Namespace) -> int:
    from gnnrl.config import ConfigError
    from gnnrl.data.calibrate import CalibrateConfig
    from gnnrl.data.calibrate_job import calibrate_to_files, read_snapshots
    from gnnrl.data.errors import DataError
    from gnnrl.data.missing import MissingPolicy
    from gnnrl.sim import AppSpecError

    try:
        missing = (MissingPolicy(action="impute", strategy=args.impute_missing)
                   if args.impute_missing else MissingPolicy())
        config = CalibrateConfig(
            app_base=None if args.app_base in ("none", "") else args.app_base,
            name=args.name, namespace=args.namespace, entry=args.entry,
            min_points=args.min_points, min_r2=args.min_r2, min_load_cv=args.min_load_cv,
            allow_partial=args.allow_partial, missing=missing, slo_p95_ms=args.slo_ms,
            default_cpu_request_m=args.default_cpu_request_m,
            default_cpu_limit_m=args.default_cpu_limit_m,
            default_mem_request_mi=args.default_mem_request_mi,
            default_startup_s=args.default_startup_s)
        data = read_snapshots(args.data, warn=lambda message: print(
            f"gnnrl calibrate: warning: {message}", file=sys.stderr))
    except (ConfigError, FileNotFoundError, DataError, AppSpecError) as exc:
        print(f"gnnrl calibrate: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = calibrate_to_files(data, config, args.out, args.trace_out)
    except ConfigError as exc:
        print(f"gnnrl calibrate: error: {exc}", file=sys.stderr)
        return 2
    except (DataError, AppSpecError) as exc:
        print(f"gnnrl calibrate: cannot calibrate: {exc}", file=sys.stderr)
        return 3
    for line in result.report_lines():
        print(line)
    print(f"wrote {args.out} ({len(result.app.services)} services, "
          f"{len(result.app.calls)} calls, entry {result.app.entry})")
    if args.trace_out:
        print(f"wrote {args.trace_out} ({len(result.trace)} points, "
              f"peak {result.trace.rps.max():.1f} req/s)")
    return 0
