"""Running the `gnnrl` command line in a child process, as a user would (smoke tests)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_gnnrl(*args: str, timeout: float = 240,
              cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gnnrl.cli *args`` with this interpreter; stdout and stderr captured as
    text. Raises `subprocess.TimeoutExpired` after `timeout` seconds."""
    return subprocess.run([sys.executable, "-m", "gnnrl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
