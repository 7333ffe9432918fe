import subprocess
import sys

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
