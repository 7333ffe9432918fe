"""KFP components of the GNNRL pipeline (`gnnrl.pipeline.dag`), one per file; each only
parses its inputs and calls `gnnrl.pipeline.steps`.

`BASE_IMAGE` is the project image every component runs in (``install_kfp_package=False``:
the image already has kfp). Override it at compile time with ``GNNRL_IMAGE``.
"""

from __future__ import annotations

import os

#: The container image of every step (the repository's Dockerfile builds it).
BASE_IMAGE = os.environ.get("GNNRL_IMAGE", "ghcr.io/gnnrl/gnnrl:0.1.0")
