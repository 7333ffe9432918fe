"""benchmarks/bench_snapshots.py runs and measures what it says (a tiny run, no timing
asserted): every stage is printed and the end-to-end stage really wrote every row."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_snapshots.py"


def test_snapshot_benchmark_prints_every_stage_and_writes_every_row(capsys):
    spec = importlib.util.spec_from_file_location("bench_snapshots", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--n", "20", "--batch", "7", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("json.loads (reference)", "json.loads + parse_graph",
                  "json.loads + parse_graph + Parquet", "Parquet write alone (parsed input)"):
        assert re.search(re.escape(stage) + r"\s+[\d,]+\s+[\d.]+x\s+[\d,]+\s+[\d.]+x", out), out
    # the OnlineBoutique fixture parses to 12 services and 16 edges per snapshot
    assert "240 node rows, 360 edge rows in 6 files" in out   # 20 snapshots, 3 flushes
    assert out.count("goal >= 1,000 snapshots/s end to end") == 2
