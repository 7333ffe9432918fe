"""`SimDriver`: runs the simulator in (scaled) real time behind an `IstioExporter`, so a
Prometheus scraping the exporter sees a mesh whose load follows a traffic trace.

Every `tick_s` wall-clock seconds it steps `gnnrl.sim.core.BatchedSim` (one copy) by one
interval at the trace's next entry rate and hands the step's rates to the exporter
(`IstioExporter.set_model`); the exporter's counters keep growing across the change, so
``rate()`` over a window spanning it is the time-weighted mix, as on a real mesh.

Usage::

    exporter = IstioExporter(TrafficModel("shop", [], [])).start()
    driver = SimDriver(exporter, make_trace("diurnal", steps=240, interval_s=15.0,
                                            peak_rps=80.0, seed=0), tick_s=1.0).start()
    ...
    driver.stop(); exporter.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrl.config import ConfigError
from gnnrl.testing.istio_exporter import IstioExporter, TrafficModel


class SimDriver:
    """Steps the simulator every `tick_s` seconds and updates `exporter`'s rates.

    Args:
        exporter: the exporter whose model is replaced at each tick.
        trace: entry req/s per simulator step (the last value repeats after the end).
        tick_s: wall-clock seconds per simulator step (the simulated interval is
            `SimConfig.interval_s`; a smaller tick replays the trace faster).
        app: application spec (name, path, dict or AppSpec).
        replicas: fixed replica counts by service (default each service's minimum).
        seed: simulator seed (arrival noise off, so the rates are the trace's).
    """

    def __init__(self, exporter: IstioExporter, trace: Sequence[float] | np.ndarray,
                 tick_s: float = 1.0, app: Any = "onlineboutique",
                 replicas: dict[str, int] | None = None, seed: int = 0) -> None:
        from gnnrl.sim import load_app_spec
        from gnnrl.sim.core import BatchedSim, SimConfig

        trace = np.asarray(trace, dtype=float)
        if trace.ndim != 1 or len(trace) == 0 or not np.isfinite(trace).all() or (trace < 0).any():
            raise ConfigError("trace: expected a non-empty 1-D array of req/s >= 0")
        if not tick_s > 0:
            raise ConfigError(f"tick_s: must be > 0, got {tick_s!r}")
        self.exporter = exporter
        self.trace = trace
        self.tick_s = float(tick_s)
        self.sim = BatchedSim(load_app_spec(app), 1,
                              SimConfig(arrival_noise=False, metric_noise=0.0), seed=seed)
        self.target = self.sim.min_replicas.copy()
        for name, count in (replicas or {}).items():
            if name not in self.sim.index:
                raise ConfigError(f"replicas: unknown service {name!r}")
            self.target[self.sim.index[name]] = count
        self.sim.reset(self.target)
        self.step_index = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="SimDriver")

    def step(self) -> TrafficModel:
        """One simulator step at the trace's next rate; updates the exporter."""
        rps = float(self.trace[min(self.step_index, len(self.trace) - 1)])
        m = self.sim.step(np.array([rps]), self.target[None, :])
        model = TrafficModel.from_metrics(self.sim, m, rps, self.exporter.model.namespace)
        self.exporter.set_model(model)
        self.step_index += 1
        return model

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.step()

    def start(self) -> SimDriver:
        self.step()                 # rates are set before the first scrape
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
