"""Bad inputs on the command line: exit 2, the last line names the file or the field, no
traceback, and nothing half-written under --out."""

from __future__ import annotations

import pytest

from gnnrl.cli import main

CYCLE = """name: cyc
entry: a
slo_p95_ms: 250
services:
  a: {cpu_request_m: 100, mem_request_mi: 64, capacity_rps: 60, service_time_ms: 4,
      startup_s: 15, min_replicas: 1, max_replicas: 15}
  b: {cpu_request_m: 100, mem_request_mi: 64, capacity_rps: 60, service_time_ms: 4,
      startup_s: 15, min_replicas: 1, max_replicas: 15}
calls:
  - {from: a, to: b, per_request: 1}
  - {from: b, to: a, per_request: 1}
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Bad files: a spec with a cycle, a YAML syntax error, a trace with wrong columns, an
    empty model folder and a model folder whose weights are garbage."""
    from scaler_support import save_tiny_model

    d = tmp_path_factory.mktemp("bad")
    (d / "cycle.yaml").write_text(CYCLE)
    (d / "syntax.yaml").write_text("name: x\nservices: [a, b\n  c: :\n")
    (d / "columns.csv").write_text("foo,bar\n1,2\n3,4\n")
    (d / "empty_model").mkdir()
    corrupt = save_tiny_model(d / "corrupt_model")
    (corrupt / "weights.pt").write_bytes(b"not a torch file")
    return d


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # argparse's usage errors
        return int(done.code or 0)


@pytest.mark.parametrize("argv, says", [
    (["train", "--app", "{d}/cycle.yaml", "--out", "{out}"], "cycle.yaml: calls: the call graph "
                                                             "has a cycle"),
    (["train", "--app", "{d}/syntax.yaml", "--out", "{out}"], "syntax.yaml: cannot parse"),
    (["train", "--trace", "{d}/missing.csv", "--out", "{out}"], "missing.csv: no such trace"),
    (["train", "--trace", "{d}/columns.csv", "--out", "{out}"], "columns.csv: unknown trace "
                                                               "format"),
    (["scaler", "run", "--sim", "--app", "{d}/cycle.yaml"], "cycle.yaml: calls"),
    (["scaler", "run", "--sim", "--faults", "notjson"], "--faults: not JSON"),
    (["evaluate", "--trace", "{d}/columns.csv", "--policies", "hpa", "--out", "{out}"],
     "columns.csv: unknown trace format"),
    (["simulate", "--policy", "gnnrl:{d}/empty_model", "--steps", "2"], "empty_model"),
    (["simulate", "--policy", "gnnrl:{d}/corrupt_model", "--steps", "2"], "corrupt_model"),
    (["evaluate", "--policies", "gnnrl:{d}/corrupt_model", "--suite", "quick", "--no-progress",
      "--out", "{out}"], "corrupt_model"),
    (["evaluate", "--policies", "gnnrl:{d}/empty_model", "--suite", "quick", "--no-progress",
      "--out", "{out}"], "empty_model"),
    (["simulate", "--peak-rps", "nan", "--steps", "2"], "--peak-rps"),
    (["simulate", "--peak-rps", "inf", "--steps", "2"], "--peak-rps"),
    (["simulate", "--peak-rps", "-3", "--steps", "2"], "--peak-rps"),
    (["evaluate", "--peak-rps", "nan", "--out", "{out}"], "--peak-rps"),
])
def test_bad_input_exits_2_naming_it_and_leaves_no_output(inputs, tmp_path, capsys, argv,
                                                          says):
    out = tmp_path / "out"
    code = run([a.format(d=inputs, out=out) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    assert says in err.splitlines()[-1]
    assert not out.exists()  # not even an empty folder


def test_evaluate_with_wrong_trace_columns_is_a_trace_error():
    from gnnrl.sim import TraceError
    from gnnrl.sim.trace_io import detect_format

    with pytest.raises(TraceError, match="unknown trace format"):
        detect_format("t.csv", ["foo", "bar"])
