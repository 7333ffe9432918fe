import subprocess
import sys

import pytest

from gnnrl.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "gnnrl.cli", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_benchmark_lists_benchmarks_and_rejects_unknown_names(capsys):
    assert main(["benchmark", "--list"]) == 0
    assert "bench_env.py" in capsys.readouterr().out
    assert main(["benchmark", "nope"]) == 2


def test_python_dash_m_gnnrl_runs_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gnnrl", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: gnnrl" in proc.stdout and "collect" in proc.stdout


@pytest.mark.parametrize(("argv", "shown"), [
    (["collect"], ["--interval INTERVAL   time between snapshots (default: 30s)",
                   "(default: 20)", "(default: 10s)", "(default: onlineboutique)"]),
    (["calibrate"], ["(default: 8)", "(default: 0.8)", "(default: 0.05)", "(default: 100.0)"]),
    (["registry", "promote"], ["(default: champion)", "(default: hpa)", "(default: 0.0)"]),
])
def test_help_shows_each_options_default_and_keeps_the_examples(capsys, argv, shown):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())       # argparse wraps long lines
    for text in shown:
        assert " ".join(text.split()) in out
    assert "(default: None)" not in out and "(default: False)" not in out
    if argv == ["collect"]:   # the examples keep their layout (RawDescription)
        assert "Examples: # 20 snapshots from the simulator" in out


def test_benchmark_policy_json_prints_the_figures_as_its_last_line(capsys):
    import json

    assert main(["benchmark", "policy", "--json", "--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    for key in ("decision_p50_ms", "decision_p99_ms", "mlp_decision_p50_ms"):
        assert figures[key] > 0, key
    assert figures["decision_p99_ms"] >= figures["decision_p50_ms"]


def test_benchmark_json_rejects_a_benchmark_it_does_not_measure(capsys):
    assert main(["benchmark", "scaler", "--json"]) == 2
    assert "--json measures env, train, policy" in capsys.readouterr().err
