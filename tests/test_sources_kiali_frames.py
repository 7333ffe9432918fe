"""`parse_graph` builds its frames from blocks for speed (benchmarks/bench_snapshots.py):
they must be indistinguishable from frames built the plain pandas way, and share no state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnrl.data.snapshot import EDGE_COLUMNS, NODE_COLUMNS, empty_edges, empty_nodes
from gnnrl.sources.kiali import parse_graph

FIXTURES = Path(__file__).parent / "fixtures" / "kiali"
NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))
T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def plain(frame: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s values rebuilt with the ordinary dict constructor and `template`'s dtypes
    (the snapshot schema's reference frames from `gnnrl.data.snapshot`)."""
    data = {c: pd.array(frame[c].tolist(), dtype=template[c].dtype) for c in template.columns}
    return pd.DataFrame(data, index=pd.RangeIndex(len(frame)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("namespace", [None, "bookinfo", "onlineboutique"])
def test_parsed_frames_equal_plainly_built_frames_for_every_fixture(name, namespace):
    snap = parse_graph(load(name), namespace=namespace, ts=T0)
    for frame, template, columns in ((snap.nodes, empty_nodes(), NODE_COLUMNS),
                                     (snap.edges, empty_edges(), EDGE_COLUMNS)):
        assert list(frame.columns) == list(columns)
        assert list(frame.dtypes) == list(template.dtypes)     # "string" and float64
        assert isinstance(frame.index, pd.RangeIndex)
        pd.testing.assert_frame_equal(frame, plain(frame, template), check_exact=True)
        # the frame works with the usual operations the consumers use
        assert frame.reset_index(drop=True).equals(frame)
        pd.testing.assert_frame_equal(pd.concat([frame, frame], ignore_index=True).iloc[
            len(frame):].reset_index(drop=True), frame)


def test_parsed_snapshots_share_no_state():
    payload = load("onlineboutique_workload_graph.json")
    first, second = parse_graph(payload, ts=T0), parse_graph(payload, ts=T0)
    before_nodes, before_edges = second.nodes.copy(), second.edges.copy()
    first.nodes.columns.name = "renamed"                     # labels are per frame
    first.nodes.loc[0, "cpu_m"] = 5.0                         # values are per frame
    first.nodes["rps_in"] *= 2
    first.edges.loc[0, "source"] = "someone-else"
    first.edges.loc[:, "qps"] = np.nan
    pd.testing.assert_frame_equal(second.nodes, before_nodes, check_exact=True)
    pd.testing.assert_frame_equal(second.edges, before_edges, check_exact=True)
    assert second.nodes.columns.name is None
    third = parse_graph(payload, ts=T0)
    pd.testing.assert_frame_equal(third.nodes, before_nodes, check_exact=True)
    pd.testing.assert_frame_equal(third.edges, before_edges, check_exact=True)


def test_utc_timestamp_is_kept_and_others_are_converted():
    payload = load("onlineboutique_workload_graph.json")
    assert parse_graph(payload, ts=T0).ts == T0
    assert parse_graph(payload, ts=T0).ts.tzinfo == T0.tzinfo
    paris = parse_graph(payload, ts=T0.tz_convert("Europe/Paris")).ts
    assert paris == T0 and str(paris.tz) == "UTC"
    assert parse_graph(payload, ts="2026-03-01T00:00:00").ts == T0     # naive is UTC
