"""The `gnnrl` command line.

Each subcommand lives in `gnnrl/commands/<name>.py` and exposes two functions:

* ``add_arguments(parser: argparse.ArgumentParser) -> None``
* ``run(args: argparse.Namespace) -> int`` (the process exit code)

and a module docstring whose first line is the one-line help and whose remainder (the
examples) is shown by ``gnnrl <name> --help``. Modules are imported lazily so that
``gnnrl --help`` stays fast and a broken optional dependency only breaks its own command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module under gnnrl.commands
COMMANDS: dict[str, str] = {
    "simulate": "simulate",
    "train": "train",
    "evaluate": "evaluate",
    "collect": "collect",
    "calibrate": "calibrate",
    "registry": "registry",
    "pipeline": "pipeline",
    "scaler": "scaler",
    "benchmark": "benchmark",
}

_ONE_LINE = {
    "simulate": "run the simulator with a simple policy and print a summary",
    "train": "train the PPO_GNN policy in the simulator",
    "evaluate": "evaluate policies against baselines on a scenario suite",
    "collect": "collect graph snapshots (Kiali, Prometheus or the simulator) into Parquet",
    "calibrate": "fit an application spec and a traffic trace from collected snapshots",
    "registry": "list, show and promote models in the MLflow registry",
    "pipeline": "compile, run locally, submit or schedule the Kubeflow pipeline",
    "scaler": "run the in-cluster scaler (shadow or active mode)",
    "benchmark": "run the speed benchmarks",
}


#: import name of a package an extra installs -> the extra (pyproject.toml), for the one
#: line a command prints when its extra is not installed
_EXTRA_OF = {
    "sb3_contrib": "train", "matplotlib": "train",
    "mlflow": "pipeline", "kfp": "pipeline",
    "prometheus_client": "scaler",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout (the examples) and appends ``(default: X)`` to each
    option's help, like `argparse.ArgumentDefaultsHelpFormatter`, except where it would
    say nothing (no default, a flag, an empty list) or repeat the help text (which already
    says ``(default...`` or ``(X...``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or isinstance(default, bool) or default is argparse.SUPPRESS
                or default in ((), [], "")
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        lowered = text.lower()
        if "%(default" in text or "(default" in lowered or f"({default}" in text:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _load(name: str):
    return importlib.import_module(f"gnnrl.commands.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnnrl",
        formatter_class=HelpFormatter,
        description="GNNRL: graph-neural-network RL autoscaler for microservices.",
        epilog="Run `gnnrl COMMAND --help` for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=_ONE_LINE[name], add_help=False)
            continue
        module = _load(name)
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=_ONE_LINE[name],
            description=doc,
            formatter_class=HelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        parser = build_parser(only="")
        if command is None:
            parser.print_help()
            return 0 if ("-h" in argv or "--help" in argv) else 2
        parser.parse_args(argv)  # prints the usage error and exits 2
        return 2
    try:
        parser = build_parser(only=command)
        args = parser.parse_args(argv)
        return int(args._run(args) or 0)
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"gnnrl {command}: needs {exc.name}, which is not installed "
              f"(pip install 'gnnrl[{extra}]')", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
