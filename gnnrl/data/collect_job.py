"""One collection run, as ``gnnrl collect`` and the pipeline's collect step both run it.

`CollectJob` holds what to collect, from where and how often; `job_source` builds its
`SnapshotSource`; `collect_dataset` runs it into a dataset folder: SIGTERM and Ctrl-C stop
it cleanly (what was collected is flushed), the simulator runs on a virtual clock unless
``realtime``, and `CollectResult.failure` says whether the run failed (nothing stored, or
the dataset could not be written). The collection loop itself is `run_collection`
(`gnnrl.data.collector`); the dataset layout is in docs/data.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.clock import Clock, SystemClock, VirtualClock
from gnnrl.data.collector import CollectConfig, CollectSummary, SnapshotSource, run_collection
from gnnrl.data.reader import last_timestamp
from gnnrl.data.sim_source import SimSourceConfig
from gnnrl.data.sources import SOURCE_KINDS, make_source

#: the signals that stop a collection cleanly
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclasses.dataclass
class CollectJob(JsonConfig):
    """What one collection run collects (the defaults are ``gnnrl collect``'s).

    Attributes:
        source: ``kiali``, ``prometheus`` or ``sim`` (`SOURCE_KINDS`).
        namespace: the namespace to collect (kiali, prometheus); for ``sim`` the namespace
            written in the rows (default ``sim``).
        url: Kiali web root or Prometheus base URL.
        token_file: bearer token file, read at every request.
        ca_bundle: CA bundle for TLS verification.
        insecure: skip TLS verification.
        timeout_s: HTTP timeout per attempt, s.
        window_s: rate window of each query, s (>= the Prometheus scrape interval).
        with_kubernetes: add replicas/CPU/memory from the Kubernetes API.
        interval_s: time between snapshots, s.
        count: number of snapshots (or give `duration_s`).
        duration_s: collect for this long, s.
        flush_every: snapshots between atomic flushes.
        seed: seed of the retry jitter and the simulator.
        app, trace, peak_rps, policy: the simulated cluster (``sim``; `SimSourceConfig`).
        realtime: ``sim`` waits `interval_s` between snapshots (default: virtual time).

    Raises:
        ConfigError: an unknown source, or a bad interval/count/duration (names the field).
    """

    source: str
    namespace: str | None = None
    url: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout_s: float = 10.0
    window_s: float = 60.0
    with_kubernetes: bool = False
    interval_s: float = 30.0
    count: int | None = None
    duration_s: float | None = None
    flush_every: int = 20
    seed: int = 0
    app: str = "onlineboutique"
    trace: str = "diurnal"
    peak_rps: float = 150.0
    policy: str = "hpa"
    realtime: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCE_KINDS:
            raise ConfigError(f"source: must be one of {SOURCE_KINDS}, got {self.source!r}")
        self.collect_config()

    def collect_config(self) -> CollectConfig:
        """The collection loop's settings (interval, count or duration, flushes, seed)."""
        return CollectConfig(interval_s=self.interval_s, count=self.count,
                             duration_s=self.duration_s, flush_every=self.flush_every,
                             seed=self.seed)


def job_source(job: CollectJob) -> Any:
    """The `SnapshotSource` of `job` (`gnnrl.data.sources.make_source`).

    Raises:
        ConfigError: a required setting is missing (the message names the flag).
    """
    http: dict[str, Any] = {"timeout_s": job.timeout_s, "retries": 0,  # the collector retries
                            "duration_s": round(job.window_s)}
    if job.token_file:
        http["token_file"] = job.token_file
    if job.insecure or job.ca_bundle:
        http["verify"] = False if job.insecure else job.ca_bundle
    sim = SimSourceConfig(app=job.app, trace=job.trace, peak_rps=job.peak_rps,
                          trace_steps=max(job.collect_config().ticks, 2),
                          interval_s=job.interval_s, policy=job.policy, seed=job.seed,
                          namespace=job.namespace or "sim")
    return make_source(job.source, job.namespace, url=job.url, http=http,
                       with_kubernetes=job.with_kubernetes, sim=sim)


@dataclasses.dataclass
class CollectResult:
    """How a collection ended.

    Attributes:
        summary: the collection's counts (also in ``OUT/_collect_summary.json``).
        stopped_by: the signal that stopped it early (``SIGTERM``, ``SIGINT``), or None.
    """

    summary: CollectSummary
    stopped_by: str | None = None

    def failure(self) -> str | None:
        """Why the run failed, in one line, or None: the dataset could not be written, or
        no snapshot was stored in a run that had ticks."""
        s = self.summary
        if s.store_error:
            return f"the dataset could not be written, collection ended: {s.store_error}"
        if s.stored == 0 and s.ticks > 0:
            return (f"no snapshot collected in {s.ticks} tick(s); "
                    f"first error: {s.first_error or 'none'}")
        return None


def virtual_start(interval_s: float, out: str) -> pd.Timestamp:
    """Simulated time starts now, floored to the interval (snapshots line up with a real
    schedule), and after anything already in `out` (a second run appends, never repeats
    timestamps)."""
    start = pd.Timestamp.now(tz="UTC").floor(f"{max(1, int(interval_s))}s")
    last = last_timestamp(out)
    if last is not None and last >= start:
        start = last + pd.Timedelta(seconds=interval_s)
    return start


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """SIGTERM and SIGINT set `stop` (the collector flushes and ends) while inside; yields
    the names of the signals received. Handlers are restored on the way out."""
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def collect_dataset(job: CollectJob, source: SnapshotSource, out: str, *,
                    progress: bool = False,
                    on_start: Callable[[CollectConfig], None] | None = None) -> CollectResult:
    """Run `job` with `source` (`job_source`) into the dataset folder `out` (appended to).

    Installs SIGTERM/SIGINT handlers that stop the run cleanly (main thread only), then
    calls `on_start` (e.g. to say the run started) and collects.

    Raises:
        WriterBusyError: another collector writes `out`.
    """
    config = job.collect_config()
    stop = threading.Event()
    with _stop_on_signals(stop) as received:
        clock: Clock
        if job.source == "sim" and not job.realtime:
            clock = VirtualClock(virtual_start(job.interval_s, out))
        else:
            clock = SystemClock(stop)
        if on_start is not None:
            on_start(config)
        summary = run_collection(source, out, config, clock, stop=stop, progress=progress)
    return CollectResult(summary, received[0] if received else None)
