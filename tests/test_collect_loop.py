"""The collection loop against a local HTTP server speaking Kiali's graph API (C1, C4, C7)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gnnrl.config import ConfigError
from gnnrl.data.clock import VirtualClock
from gnnrl.data.collector import CollectConfig, collect, run_collection
from gnnrl.data.snapshot import GraphSnapshot
from gnnrl.data.sources import ClientSource
from gnnrl.data.store import SnapshotWriter, read_dataset
from gnnrl.sources.errors import SourceUnavailable
from gnnrl.sources.kiali import KialiClient

FIXTURE = Path(__file__).parent / "fixtures" / "kiali" / "test_workload_graph.expected.json"
GRAPH = FIXTURE.read_bytes()


@pytest.fixture
def kiali_server(kiali):
    """The fake Kiali answering from a script: (status, body, delay_s) answers, the last
    repeating, or a function of the query parameters returning one."""

    def start(script):
        kiali.script(script)
        return kiali

    return start


def kiali_source(url: str, timeout_s: float = 2.0) -> ClientSource:
    client = KialiClient(url, retries=0, timeout_s=timeout_s)  # the collector retries
    return ClientSource("kiali", client, "bookinfo")


OK = (200, GRAPH, 0.0)
ERR500 = (500, b'{"error": "boom"}', 0.0)


def test_kiali_500_becomes_gap_row_then_collection_continues(tmp_path, kiali_server):
    t0 = pd.Timestamp("2026-03-01T00:00:00Z")
    # every attempt of the first tick (Kiali's queryTime = the tick's time) fails
    server = kiali_server(lambda q: ERR500 if int(q["queryTime"]) == t0.timestamp() else OK)
    cfg = CollectConfig(interval_s=30, count=3, seed=1)
    clock = VirtualClock("2026-03-01T00:00:00Z")
    with SnapshotWriter(tmp_path) as w:
        summary = collect(kiali_source(server.url), w, cfg, clock)
    data = read_dataset(tmp_path)
    assert summary.gaps == 1 and summary.snapshots == 2
    assert summary.errors == {"SourceUnavailable": summary.attempts - 2}
    assert summary.attempts - 2 >= 4  # retried inside the interval
    gap = data.gaps.iloc[0]
    assert gap.source == "kiali" and gap.error.startswith("SourceUnavailable:")
    assert "HTTP 500" in gap.error
    # the retries stayed inside the first tick's budget (80 % of 30 s)
    assert gap.start == pd.Timestamp("2026-03-01T00:00:00Z")
    assert gap.end <= pd.Timestamp("2026-03-01T00:00:24Z")
    # no data row for the failed tick; the next ticks are on schedule
    assert sorted(data.nodes.ts.unique()) == [pd.Timestamp("2026-03-01T00:00:30Z"),
                                              pd.Timestamp("2026-03-01T00:01:00Z")]


def test_retry_backoff_is_jittered_and_grows(tmp_path, kiali_server):
    server = kiali_server([ERR500])
    sleeps = []
    for seed in (1, 2):
        clock = VirtualClock()
        with SnapshotWriter(tmp_path / str(seed)) as w:
            collect(kiali_source(server.url), w, CollectConfig(interval_s=30, count=1, seed=seed),
                    clock)
        sleeps.append(clock.slept)
    a, b = sleeps
    assert a != b  # jitter
    for delays in sleeps:
        assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0 and 1.0 <= delays[2] <= 2.0
        assert sum(delays) <= 24.0


def test_kiali_timeout_becomes_gap_row(tmp_path, kiali_server):
    server = kiali_server([(200, GRAPH, 1.0)])  # answers after the client's timeout
    cfg = CollectConfig(interval_s=2, count=1, backoff_s=(0.5,), seed=0)
    with SnapshotWriter(tmp_path) as w:
        summary = collect(kiali_source(server.url, timeout_s=0.15), w, cfg, VirtualClock())
    gaps = read_dataset(tmp_path).gaps
    assert summary.gaps == 1 and summary.snapshots == 0
    assert "timeout" in gaps.error.iloc[0]


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        ((401, b"{}", 0.0), "SourceAuthError"),
        ((200, b"{not json", 0.0), "MalformedPayload"),
        ((200, b'{"elements": {"nodes": 5}}', 0.0), "MalformedPayload"),
    ],
)
def test_non_retryable_error_is_one_attempt_and_a_gap(tmp_path, kiali_server, response,
                                                      error_type):
    server = kiali_server([response, OK])
    with SnapshotWriter(tmp_path) as w:
        summary = collect(kiali_source(server.url), w, CollectConfig(interval_s=30, count=2),
                          VirtualClock())
    assert summary.attempts == 2 and summary.errors == {error_type: 1}
    data = read_dataset(tmp_path)
    assert data.gaps.error.iloc[0].startswith(error_type)
    assert data.nodes.ts.nunique() == 1  # nothing written for the bad tick


def one_node() -> pd.DataFrame:
    return pd.DataFrame([{"service": "frontend", "replicas": 1.0, "ready_replicas": 1.0,
                          "cpu_m": 50.0, "mem_mi": 64.0, "rx_kbps": 1.0, "tx_kbps": 2.0,
                          "rps_in": 10.0}])


class ScriptedSource:
    """A source whose fetch lets `took_s` pass on the clock; optionally sets `stop`."""

    name = "scripted"

    def __init__(self, clock: VirtualClock, took_s: list[float],
                 stop: threading.Event | None = None, stop_at: int = -1) -> None:
        self.clock, self.took_s, self.stop, self.stop_at = clock, took_s, stop, stop_at
        self.calls: list[pd.Timestamp] = []

    def fetch(self, ts):
        self.calls.append(ts)
        self.clock.advance(self.took_s[min(len(self.calls) - 1, len(self.took_s) - 1)])
        if len(self.calls) == self.stop_at and self.stop is not None:
            self.stop.set()
        return GraphSnapshot(ts, "ns", one_node())


def test_slow_tick_skips_missed_slots_and_keeps_the_schedule(tmp_path):
    clock = VirtualClock("2026-03-01T00:00:00Z")
    source = ScriptedSource(clock, [1.0, 70.0, 1.0])
    with SnapshotWriter(tmp_path) as w:
        summary = collect(source, w, CollectConfig(interval_s=30, count=6), clock)
    offsets = [(t - clock.start).total_seconds() for t in source.calls]
    assert offsets == [0, 30, 120, 150]  # 60 and 90 were missed while tick 2 ran
    assert summary.late_ticks == 2 and summary.snapshots == 4


def test_stop_request_ends_loop_and_flushes_everything(tmp_path):
    clock = VirtualClock()
    stop = threading.Event()
    source = ScriptedSource(clock, [0.1], stop=stop, stop_at=3)
    summary = run_collection(source, str(tmp_path), CollectConfig(interval_s=30, count=100,
                                                                  flush_every=50),
                             clock, stop=stop)
    assert summary.stopped and summary.snapshots == 3
    assert len(read_dataset(tmp_path).nodes) == 3
    record = json.loads((tmp_path / "_collect_summary.json").read_text())
    assert record["stopped"] is True and record["snapshots"] == 3


def test_source_error_from_a_sim_like_source_is_counted_by_type(tmp_path):
    class Flaky:
        name = "flaky"
        n = 0

        def fetch(self, ts):
            self.n += 1
            if self.n % 2:
                raise SourceUnavailable("no answer", source="flaky")
            return GraphSnapshot(ts, "ns", one_node())

    with SnapshotWriter(tmp_path) as w:
        summary = collect(Flaky(), w, CollectConfig(interval_s=30, count=4), VirtualClock())
    assert summary.snapshots == 4 and summary.gaps == 0
    assert summary.errors == {"SourceUnavailable": 4}  # each tick's first try failed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": 3, "duration_s": 60.0}, "count / duration_s"),
        ({}, "count / duration_s"),
        ({"count": 0}, "count"),
        ({"count": 1, "interval_s": 0}, "interval_s"),
        ({"count": 1, "retry_budget": 1.5}, "retry_budget"),
        ({"count": 1, "backoff_s": ()}, "backoff_s"),
    ],
)
def test_invalid_collect_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        CollectConfig(**kwargs)


def test_duration_sets_the_number_of_ticks():
    assert CollectConfig(interval_s=30, duration_s=7200).ticks == 240
    assert CollectConfig(interval_s=30, duration_s=45).ticks == 2


def test_stop_interrupts_the_wait_between_ticks_in_real_time(tmp_path):
    from gnnrl.data.clock import SystemClock

    stop = threading.Event()
    clock = SystemClock(stop)

    class Instant:
        name = "instant"

        def fetch(self, ts):
            return GraphSnapshot(ts, "ns", one_node())

    timer = threading.Timer(0.2, stop.set)
    timer.start()
    t0 = time.monotonic()
    summary = run_collection(Instant(), str(tmp_path), CollectConfig(interval_s=60, count=3),
                             clock, stop=stop)
    assert time.monotonic() - t0 < 5  # not the 60 s interval
    assert summary.stopped and summary.snapshots == 1
    assert len(read_dataset(tmp_path).nodes) == 1


def test_huge_payload_is_a_gap_and_nothing_is_written(tmp_path, kiali_server):
    server = kiali_server([OK])
    client = KialiClient(server.url, retries=0, timeout_s=2.0, max_payload_bytes=1000)
    with SnapshotWriter(tmp_path) as w:
        summary = collect(ClientSource("kiali", client, "bookinfo"), w,
                          CollectConfig(interval_s=30, count=1), VirtualClock())
    data = read_dataset(tmp_path)
    assert summary.errors == {"PayloadTooLarge": 1} and data.nodes.empty  # a MalformedPayload
    assert "max_payload_bytes" in data.gaps.error.iloc[0]


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_json_nested_100k_deep_is_a_gap_and_collection_continues(tmp_path, kiali_server):
    server = kiali_server([(200, DEEP, 0.0), OK])
    with SnapshotWriter(tmp_path) as w:
        summary = collect(kiali_source(server.url), w, CollectConfig(interval_s=30, count=2),
                          VirtualClock())
    assert summary.errors == {"MalformedPayload": 1} and summary.snapshots == 1
    gap = read_dataset(tmp_path).gaps.iloc[0]
    assert gap.error.startswith("MalformedPayload:") and "nested deeper" in gap.error


@pytest.mark.parametrize("exc", [RecursionError("maximum recursion depth exceeded"),
                                 KeyError("replicas"), ZeroDivisionError("float division")])
def test_unexpected_exception_in_a_tick_is_a_gap_and_collection_continues(tmp_path, exc):
    class Buggy:
        name = "buggy"
        n = 0

        def fetch(self, ts):
            self.n += 1
            if self.n == 2:
                raise exc
            return GraphSnapshot(ts, "ns", one_node())

    with SnapshotWriter(tmp_path) as w:
        summary = collect(Buggy(), w, CollectConfig(interval_s=30, count=3), VirtualClock())
    assert summary.snapshots == 2 and summary.gaps == 1 and summary.attempts == 3  # no retry
    assert summary.errors == {type(exc).__name__: 1}
    data = read_dataset(tmp_path)
    assert data.nodes.ts.nunique() == 2
    assert data.gaps.source.tolist() == ["buggy"]
    assert data.gaps.error.iloc[0].startswith(type(exc).__name__)
    assert summary.first_error == data.gaps.error.iloc[0]


def test_snapshot_the_writer_refuses_is_a_gap_and_collection_continues(tmp_path):
    class MissingColumn:
        name = "odd"
        n = 0

        def fetch(self, ts):
            self.n += 1
            nodes = one_node() if self.n != 1 else one_node().drop(columns=["cpu_m"])
            return GraphSnapshot(ts, "ns", nodes)

    with SnapshotWriter(tmp_path) as w:
        summary = collect(MissingColumn(), w, CollectConfig(interval_s=30, count=2),
                          VirtualClock())
    assert summary.snapshots == 1 and summary.gaps == 1
    assert summary.errors == {"SnapshotShapeError": 1}


TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXNlcnZpY2UtYWNjb3VudA.c2lnbmF0dXJl"


@pytest.mark.parametrize("auth", ["token", "token_file"])
def test_4xx_body_echoing_the_bearer_token_never_reaches_the_gaps_table(tmp_path, kiali_server,
                                                                        auth):
    # a proxy that answers 400 with the request headers it received, and a long body
    echo = (f"bad request; headers: Authorization: Bearer {TOKEN}\r\nAccept: */*\r\n"
            f"raw token again: {TOKEN} " + "x" * 2000).encode()
    server = kiali_server([(400, echo, 0.0)])
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    kwargs = {"token": TOKEN} if auth == "token" else {"token_file": str(token_file)}
    client = KialiClient(server.url, retries=0, timeout_s=2.0, **kwargs)
    out = tmp_path / "data"
    summary = run_collection(ClientSource("kiali", client, "bookinfo"), str(out),
                             CollectConfig(interval_s=30, count=1), VirtualClock())
    error = read_dataset(out).gaps.error.iloc[0]
    assert error.startswith("SourceError:") and "HTTP 400" in error
    assert TOKEN not in error and TOKEN[:20] not in error and "***" in error
    body = error.split("HTTP 400 from ", 1)[1].split(": ", 1)[1]
    assert len(body) <= 200                                      # cut, not 2 KB of body
    for stored in (summary.first_error, (out / "_collect_summary.json").read_text()):
        assert TOKEN not in stored
