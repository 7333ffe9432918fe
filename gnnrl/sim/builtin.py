"""The built-in applications `gnnrl.sim.load_app_spec` knows by name.

``onlineboutique`` (Google's microservices-demo), ``socialnetwork`` (DeathStarBench) and
``generated-<seed>`` (a seeded random application, `gnnrl.sim.generator`).
"""

from __future__ import annotations

from collections.abc import Callable

from gnnrl.sim.generator import GENERATED_PREFIX, generate_app, generated_app_seed
from gnnrl.sim.onlineboutique import onlineboutique
from gnnrl.sim.socialnetwork import socialnetwork
from gnnrl.sim.spec import AppSpec

#: name -> factory of the hand-built applications.
BUILTIN_APPS: dict[str, Callable[[], AppSpec]] = {
    "onlineboutique": onlineboutique,
    "socialnetwork": socialnetwork,
}


def builtin_names() -> list[str]:
    """Names to show a user: the hand-built apps, then the generated family."""
    return [*sorted(BUILTIN_APPS), f"{GENERATED_PREFIX}<seed>"]


def builtin_app(name: str) -> AppSpec | None:
    """The built-in app called `name`, or None if there is none."""
    if name in BUILTIN_APPS:
        return BUILTIN_APPS[name]()
    seed = generated_app_seed(name)
    return None if seed is None else generate_app(seed)
