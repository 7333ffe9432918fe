"""Calibration quality: how well `gnnrl calibrate` recovers the simulator's own parameters.

For each trace x replica policy x seed it collects `--count` snapshots from `--source sim`
(OnlineBoutique, 2 % CPU/memory noise, Poisson arrivals), calibrates, and prints the worst
relative error over services of capacity per pod, calls per request and service time, and
how many saturated snapshots the CPU fit dropped. Run::

    python3 benchmarks/bench_calibration.py
    python3 benchmarks/bench_calibration.py --count 120 --seeds 0 1 2 --traces diurnal flash
"""

from __future__ import annotations

import argparse
import tempfile

from gnnrl.data.calibrate import calibrate
from gnnrl.data.clock import VirtualClock
from gnnrl.data.collector import CollectConfig, collect
from gnnrl.data.errors import CalibrationError
from gnnrl.data.sim_source import POLICIES, SimSource, SimSourceConfig
from gnnrl.data.store import SnapshotWriter, read_dataset
from gnnrl.sim import TRACE_KINDS


def one(trace: str, policy: str, seed: int, count: int, peak: float) -> str:
    src = SimSource(SimSourceConfig(trace=trace, policy=policy, seed=seed, trace_steps=count,
                                    peak_rps=peak))
    with tempfile.TemporaryDirectory() as root:
        with SnapshotWriter(root) as w:
            collect(src, w, CollectConfig(interval_s=src.config.interval_s, count=count),
                    VirtualClock())
        try:
            cal = calibrate(read_dataset(root))
        except CalibrationError as exc:
            return f"refused: {str(exc)[:80]}"
    truth = src.app.services
    cap = max(abs(cal.app.services[s].capacity_rps / t.capacity_rps - 1)
              for s, t in truth.items())
    st = max(abs(cal.app.services[s].service_time_ms / t.service_time_ms - 1)
             for s, t in truth.items())
    per = {(c.src, c.dst): c.per_request for c in src.app.calls}
    calls = max(abs(c.per_request / per[(c.src, c.dst)] - 1) for c in cal.app.calls)
    dropped = sum(f.n_saturated for f in cal.services.values())
    return f"{cap:>9.2%}{calls:>9.2%}{st:>9.1%}{dropped:>9}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=240, help="snapshots per run")
    parser.add_argument("--peak-rps", type=float, default=200.0)
    parser.add_argument("--traces", nargs="+", default=["diurnal", "flash", "fluctuating",
                                                        "ramp"], choices=TRACE_KINDS)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args(argv)
    print(f"worst relative error over the {args.count}-snapshot runs' services "
          "(tolerances in tests: capacity 10 %, calls 5 %, service time 35 %)")
    print(f"{'trace':<13}{'policy':<8}{'seed':>5}{'capacity':>9}{'calls':>9}{'svc_ms':>9}"
          f"{'dropped':>9}")
    for trace in args.traces:
        for policy in args.policies:
            for seed in args.seeds:
                row = one(trace, policy, seed, args.count, args.peak_rps)
                print(f"{trace:<13}{policy:<8}{seed:>5}{row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
