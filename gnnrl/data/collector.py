"""The collection loop: poll a snapshot source on a fixed schedule into a `SnapshotWriter`.

One function, `collect`, used by `gnnrl collect` and by the KFP collect component. Faults
(the fault table of docs/data.md):

* C1: a failing source (5xx, timeout) is retried inside the interval with jittered
  exponential backoff; when the interval's retry budget is spent, no data row is written, a
  `gaps` row (start, end, source, error) is, the error is counted and the loop goes on.
  Non-retryable errors (auth, malformed payload) are not retried within the tick.
* Any other exception of a tick (a bug or an unforeseen answer of a source: a
  `RecursionError`, a `KeyError`...) is one gap row too, counted by its type, and the loop
  goes on. Error texts are redacted and cut (`gnnrl.sources.redact`) before they are stored.
* A store failure (disk full, file too large: `StoreWriteError`) ends the collection: the
  buffer is flushed once more and, if that fails too, its snapshots are dropped and their
  span is recorded as a ``store`` gap; `CollectSummary.store_error` says what happened and
  ``gnnrl collect`` exits non-zero. Snapshots counted in `CollectSummary.stored` are
  readable; nothing else is ever reported as stored.
* C7: a stop request (SIGTERM via `SystemClock`'s stop event) ends the loop between ticks
  or during a wait; everything buffered is flushed atomically by the caller's
  `writer.close()` (`run_collection` does it) and the command exits 0.

The clock is injected (`gnnrl.data.clock`): `SystemClock` waits in real time,
`VirtualClock` makes a simulator collection run as fast as the simulator steps.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import random
import threading
from typing import Protocol

import pandas as pd

from gnnrl.config import ConfigError, JsonConfig
from gnnrl.data.clock import Clock
from gnnrl.data.errors import StoreWriteError
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.store import SnapshotWriter
from gnnrl.kube.errors import K8sError
from gnnrl.sources.errors import SourceError
from gnnrl.sources.redact import redact

log = logging.getLogger(__name__)

#: Longest error text stored in a gap row or the summary, characters.
ERROR_TEXT_LIMIT = 500
#: `source` of the gap row that records snapshots lost to a store failure.
STORE_SOURCE = "store"


class SnapshotSource(Protocol):
    """Anything that can produce the graph at a moment (Kiali, Prometheus, the simulator).

    ``fetch`` raises `gnnrl.sources.errors.SourceError` (or, from the Kubernetes API,
    `gnnrl.kube.errors.K8sError`) subclasses for failures the collector should survive;
    ``retryable`` on the error says whether to retry this tick.
    """

    name: str

    def fetch(self, ts: pd.Timestamp) -> GraphSnapshot:
        """The graph for the window ending at `ts` (UTC)."""


@dataclasses.dataclass
class CollectConfig(JsonConfig):
    """Schedule and retry policy of one collection.

    Attributes:
        interval_s: seconds between ticks (snapshot timestamps are ``start + k*interval``).
        count: number of ticks; exactly one of `count` / `duration_s` is set.
        duration_s: collect for this long (``ceil(duration / interval)`` ticks).
        backoff_s: sleep before retry n is ``backoff_s[min(n, len-1)]`` with "equal jitter"
            (half fixed, half uniform random: AWS Architecture Blog, "Exponential Backoff And
            Jitter", 2015), so many collectors do not retry in lockstep.
        retry_budget: fraction of the interval retries may use; then the tick is a gap.
        flush_every: snapshots buffered between atomic flushes (SIGKILL loses at most these).
        seed: seed of the jitter (None: from the OS).
    """

    interval_s: float = 30.0
    count: int | None = None
    duration_s: float | None = None
    backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    retry_budget: float = 0.8
    flush_every: int = 20
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.interval_s, int | float) and self.interval_s > 0):
            raise ConfigError(f"interval_s: must be > 0 seconds, got {self.interval_s!r}")
        if (self.count is None) == (self.duration_s is None):
            raise ConfigError("count / duration_s: set exactly one of them")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ConfigError(f"count: must be an integer >= 1, got {self.count!r}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"duration_s: must be > 0 seconds, got {self.duration_s!r}")
        if not self.backoff_s or any(not b >= 0 for b in self.backoff_s):
            raise ConfigError(f"backoff_s: must be non-empty and >= 0, got {self.backoff_s!r}")
        if not 0 < self.retry_budget <= 1:
            raise ConfigError(f"retry_budget: must be in (0, 1], got {self.retry_budget!r}")
        if not isinstance(self.flush_every, int) or self.flush_every < 1:
            raise ConfigError(f"flush_every: must be an integer >= 1, got {self.flush_every!r}")

    @property
    def ticks(self) -> int:
        if self.count is not None:
            return self.count
        assert self.duration_s is not None  # exactly one of the two is set (__post_init__)
        return max(1, math.ceil(float(self.duration_s) / self.interval_s - 1e-9))


@dataclasses.dataclass
class CollectSummary:
    """What a collection did. Rows are the writer's (validated) totals."""

    ticks: int = 0
    snapshots: int = 0
    node_rows: int = 0
    edge_rows: int = 0
    quarantined_rows: int = 0
    gaps: int = 0
    attempts: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    late_ticks: int = 0
    stopped: bool = False
    files: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    #: snapshots whose flush is committed (readable in the dataset)
    stored: int = 0
    #: the first error of the collection ("Type: message", redacted), "" if none
    first_error: str = ""
    #: why the store failed ("" if it did not); the collection ended there
    store_error: str = ""
    #: snapshots collected but dropped because the store failed (recorded as a gap)
    unstored: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        errs = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        stored = f" (stored: {self.stored})" if self.stored != self.snapshots else ""
        out = [
            f"ticks: {self.ticks}  snapshots: {self.snapshots}{stored}  gaps: {self.gaps}"
            + ("  (stopped early by signal)" if self.stopped else ""),
            f"rows: nodes={self.node_rows} edges={self.edge_rows} "
            f"quarantined={self.quarantined_rows}  files written: {self.files}",
            f"attempts: {self.attempts}  errors: {errs}  late ticks: {self.late_ticks}",
            "kept out of the service mapping: "
            + (", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"),
        ]
        if self.first_error:
            out.append(f"first error: {self.first_error}")
        if self.store_error:
            out.append(f"store failed, collection ended: {self.store_error}"
                       + (f" ({self.unstored} snapshot(s) not stored)" if self.unstored
                          else ""))
        return out


def _error_text(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``Type: message``, redacted and cut: what a gap row and the summary keep."""
    return redact(f"{type(exc).__name__}: {exc}", secrets, limit=ERROR_TEXT_LIMIT)


def _secrets(source: object) -> tuple[str, ...]:
    """Credentials a source uses (`ClientSource.secrets`), to redact from error texts."""
    get = getattr(source, "secrets", None)
    try:
        return tuple(get()) if callable(get) else ()
    except Exception:  # redaction must never be what fails a tick
        return ()


class _Tick:
    """One tick's fetch with retries (kept apart so `collect` stays a readable loop)."""

    def __init__(self, source: SnapshotSource, config: CollectConfig, clock: Clock,
                 stop: threading.Event, rng: random.Random, summary: CollectSummary) -> None:
        self.source, self.config, self.clock = source, config, clock
        self.stop, self.rng, self.summary = stop, rng, summary

    def _delay(self, attempt: int) -> float:
        base = self.config.backoff_s[min(attempt, len(self.config.backoff_s) - 1)]
        return base / 2 + self.rng.uniform(0, base / 2)

    def _count(self, exc: BaseException) -> str:
        name = type(exc).__name__
        self.summary.errors[name] = self.summary.errors.get(name, 0) + 1
        text = _error_text(exc, _secrets(self.source))
        if not self.summary.first_error:
            self.summary.first_error = text
        return text

    def run(self, ts: pd.Timestamp, deadline: float) -> tuple[GraphSnapshot | None, tuple]:
        """Fetch, retrying retryable errors until `deadline` (monotonic).

        Returns (snapshot, ()) or (None, (gap_start, gap_end, error_text)); the gap starts
        at `ts` (when the data was due) and ends when the last attempt gave up. Any
        exception (not only `SourceError`) ends the tick as a gap; only retryable
        `SourceError`s and `K8sError`s are retried.
        """
        attempt = 0
        while True:
            self.summary.attempts += 1
            try:
                return self.source.fetch(ts), ()
            except (SourceError, K8sError) as exc:
                text = self._count(exc)
                delay = self._delay(attempt)
                attempt += 1
                out_of_time = self.clock.monotonic() + delay > deadline
                if not exc.retryable or out_of_time or self.stop.is_set():
                    return None, (ts, self.clock.now(), text)
                self.clock.sleep(delay)
                if self.stop.is_set():
                    return None, (ts, self.clock.now(), text)
            except Exception as exc:  # one bad tick must not end a collection
                log.warning("collect: tick %s failed unexpectedly", ts, exc_info=True)
                return None, (ts, self.clock.now(), self._count(exc))


def collect(
    source: SnapshotSource,
    writer: SnapshotWriter,
    config: CollectConfig,
    clock: Clock,
    *,
    stop: threading.Event | None = None,
    progress: bool = False,
) -> CollectSummary:
    """Run the schedule: at each tick fetch a snapshot (with retries) and write it, or write a
    gap row. Flushes the writer every `config.flush_every` snapshots and at the end (also on a
    stop request or an unexpected exception); the caller closes it.

    Args:
        source: where snapshots come from (`SnapshotSource`).
        writer: the dataset writer.
        config: schedule and retry policy.
        clock: `SystemClock` (real time) or `VirtualClock` (no waiting).
        stop: set it (e.g. from a SIGTERM handler) to end after the current tick; its wait
            must be the clock's sleep for a prompt stop (`SystemClock(stop)` does that).
        progress: show a tqdm progress bar.

    Returns:
        The `CollectSummary` (row totals after the final flush).
    """
    from tqdm.auto import tqdm

    stop = stop if stop is not None else getattr(clock, "stop", None) or threading.Event()
    summary = CollectSummary()
    rng = random.Random(config.seed)
    tick = _Tick(source, config, clock, stop, rng, summary)
    since_flush = 0
    total = config.ticks
    t0 = clock.monotonic()
    bar = tqdm(total=total, disable=not progress, unit="snap", desc=f"collect {source.name}")
    try:
        k = 0
        while k < total and not stop.is_set():
            start = t0 + k * config.interval_s
            clock.sleep(start - clock.monotonic())
            if stop.is_set():
                break
            deadline = start + config.retry_budget * config.interval_s
            due = clock.now()
            snapshot, gap = tick.run(due, deadline)
            summary.ticks += 1
            if snapshot is not None:
                try:
                    writer.write(snapshot)
                except StoreWriteError as exc:   # a flush inside write() failed
                    summary.snapshots += 1
                    summary.store_error = _error_text(exc)
                    break
                except Exception as exc:  # a snapshot the writer refuses
                    snapshot, gap = None, (due, clock.now(), tick._count(exc))
                else:
                    summary.snapshots += 1
            if snapshot is None:
                writer.write_gap(gap[0], gap[1], source=source.name, error=gap[2])
                summary.gaps += 1
            since_flush += 1
            if since_flush >= config.flush_every:
                try:
                    writer.flush()
                except StoreWriteError as exc:
                    summary.store_error = _error_text(exc)
                    break
                since_flush = 0
            bar.update(1)
            bar.set_postfix(gaps=summary.gaps, errors=sum(summary.errors.values()))
            # The next tick is the first scheduled one not already in the past.
            behind = math.floor((clock.monotonic() - t0) / config.interval_s) + 1
            if behind > k + 1:
                summary.late_ticks += behind - (k + 1)
            k = max(k + 1, behind)
        summary.stopped = stop.is_set()
    finally:
        bar.close()
        _final_flush(writer, summary, clock)
    st = writer.stats
    summary.node_rows, summary.edge_rows = st.nodes, st.edges
    summary.quarantined_rows, summary.files = st.quarantined, st.files
    summary.stored = st.stored_snapshots
    summary.skipped = dict(st.skipped)
    summary.errors = dict(collections.OrderedDict(sorted(summary.errors.items())))
    return summary


def _final_flush(writer: SnapshotWriter, summary: CollectSummary, clock: Clock) -> None:
    """Flush what is buffered. If the store refuses, drop the buffered snapshots and try
    to commit one ``store`` gap row for their span instead (a small file: it may fit where
    the data did not); whatever happens is in `summary.store_error` / `unstored`."""
    try:
        writer.flush()
        return
    except StoreWriteError as exc:
        summary.store_error = summary.store_error or _error_text(exc)
    span = writer.pending_span()
    summary.unstored += writer.discard_pending()
    now = clock.now()
    start = span[0] if span is not None else now
    writer.write_gap(min(start, now), now, source=STORE_SOURCE, error=summary.store_error)
    summary.gaps += 1
    try:
        writer.flush()
    except StoreWriteError as exc:
        log.error("collect: the store gap could not be recorded either: %s", exc)


def run_collection(source: SnapshotSource, out_dir: str, config: CollectConfig,
                   clock: Clock, *, stop: threading.Event | None = None,
                   progress: bool = False) -> CollectSummary:
    """Open a `SnapshotWriter` on `out_dir`, `collect`, close the writer (final atomic flush)
    and the source, and write ``out_dir/_collect_summary.json`` (ignored by readers: leading
    underscore). What `gnnrl.data.collect_job.collect_dataset` runs (``gnnrl collect`` and
    the KFP collect step)."""
    import json
    from pathlib import Path

    from gnnrl.config import atomic_write_text

    writer = SnapshotWriter(out_dir, flush_snapshots=config.flush_every + 1)
    try:
        summary = collect(source, writer, config, clock, stop=stop, progress=progress)
    finally:
        try:
            writer.close()
        except StoreWriteError as exc:   # only a gap row could still be buffered here
            log.error("collect: closing the dataset failed: %s", exc)
        close = getattr(source, "close", None)
        if close is not None:
            close()
    record = dataclasses.asdict(summary) | {"source": source.name,
                                            "orphans_removed": writer.stats.orphans_removed}
    try:
        atomic_write_text(Path(out_dir) / "_collect_summary.json", json.dumps(record, indent=2))
    except OSError as exc:   # e.g. the full disk that ended the collection
        log.error("collect: cannot write %s/_collect_summary.json: %s", out_dir, exc)
    return summary
