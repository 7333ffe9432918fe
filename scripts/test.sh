#!/usr/bin/env bash
# The README's test command: install the package with every extra (`all` = train,
# pipeline, scaler, dev), lint, type-check, run the tests.
# torch is pinned to the CPU build in pyproject.toml and installed in the same pip call,
# so pip never resolves a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.13.0" -e ".[all]"
python3 -m ruff check .
python3 -m mypy gnnrl
python3 -c "from importlinter.cli import lint_imports_command; lint_imports_command()"  # lint-imports
python3 -m pytest -q "$@"
