"""Snapshot ingest throughput: Kiali JSON -> `parse_graph` -> Parquet, in snapshots/s.

Measures, on the same payload in the same run:

1. ``json.loads`` alone (the reference: the least any Kiali ingest must do),
2. ``json.loads`` + ``gnnrl.sources.kiali.parse_graph``,
3. ``json.loads`` + ``parse_graph`` + ``SnapshotWriter.write`` (validated, batched: one
   atomic Parquet file per ``--batch`` snapshots, flushed at the end; the time includes
   every flush),
4. ``SnapshotWriter.write`` alone on already parsed snapshots (the store's own share).

and prints snapshots/s for each and the ratio to (1). The goal for (3) is >= 1,000
snapshots/s (issue 5). Run::

    python3 benchmarks/bench_snapshots.py                 # OnlineBoutique-shaped payload
    python3 benchmarks/bench_snapshots.py --n 5000 --batch 1000
    python3 benchmarks/bench_snapshots.py --payload path/to/kiali_graph.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from gnnrl.data.store import SnapshotWriter, read_dataset
from gnnrl.sources.kiali import parse_graph

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAYLOAD = ROOT / "tests" / "fixtures" / "kiali" / "onlineboutique_workload_graph.json"


def bench(fn, n: int, repeats: int) -> float:
    """Best-of-`repeats` snapshots/s of calling `fn(i)` for i in range(n)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload", type=Path, default=DEFAULT_PAYLOAD)
    parser.add_argument("--n", type=int, default=2000, help="snapshots per measurement")
    parser.add_argument("--batch", type=int, default=500, help="snapshots per Parquet file")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    raw = args.payload.read_bytes()
    probe = parse_graph(json.loads(raw))
    t0 = pd.Timestamp("2026-03-01T00:00:00Z")
    ts = [t0 + pd.Timedelta(seconds=30 * i) for i in range(args.n)]

    ref = bench(lambda i: json.loads(raw), args.n, args.repeats)
    parse = bench(lambda i: parse_graph(json.loads(raw), ts=ts[i]), args.n, args.repeats)

    tmp = Path(tempfile.mkdtemp(prefix="bench_snapshots_"))
    best = float("inf")
    best_write = float("inf")
    parsed = [parse_graph(json.loads(raw), ts=t) for t in ts]
    try:
        for r in range(args.repeats):
            out = tmp / str(r)
            start = time.perf_counter()
            with SnapshotWriter(out, flush_snapshots=args.batch) as writer:
                for i in range(args.n):
                    writer.write(parse_graph(json.loads(raw), ts=ts[i]))
            best = min(best, time.perf_counter() - start)
            start = time.perf_counter()
            with SnapshotWriter(tmp / f"w{r}", flush_snapshots=args.batch) as writer:
                for snap in parsed:
                    writer.write(snap)
            best_write = min(best_write, time.perf_counter() - start)
        written = read_dataset(tmp / "0")
        files = len(list((tmp / "0").rglob("part-*.parquet")))
        size = sum(p.stat().st_size for p in (tmp / "0").rglob("part-*.parquet"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    full = args.n / best

    print(f"payload: {args.payload.name} ({len(raw):,} bytes; {len(probe.nodes)} services, "
          f"{len(probe.edges)} edges after parsing); n={args.n}, batch={args.batch}, "
          f"best of {args.repeats}")
    print(f"{'stage':<38}{'snapshots/s':>14}{'vs json.loads':>15}")
    for name, rate in (("json.loads (reference)", ref),
                       ("json.loads + parse_graph", parse),
                       ("json.loads + parse_graph + Parquet", full),
                       ("Parquet write alone (parsed input)", args.n / best_write)):
        print(f"{name:<38}{rate:>14,.0f}{rate / ref:>14.3f}x")
    print(f"written: {len(written.nodes):,} node rows, {len(written.edges):,} edge rows in "
          f"{files} files, {size / args.n:,.0f} bytes/snapshot on disk")
    goal = 1000.0
    print(f"goal >= {goal:,.0f} snapshots/s end to end: {'met' if full >= goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
