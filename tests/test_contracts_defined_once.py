"""The action and seed contracts are defined once, in `gnnrl.contracts`, and imported
everywhere else: a second definition is how two layers come to disagree silently."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gnnrl
from gnnrl.contracts import moves, seeds

PACKAGE = Path(gnnrl.__file__).resolve().parent


def module_level_definitions(name: str) -> list[str]:
    """Files of the package that assign `name` at module level."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(str(path.relative_to(PACKAGE.parent)))
    return found


@pytest.mark.parametrize(("name", "home"), [
    ("NUM_MOVES", "gnnrl/contracts/moves.py"),
    ("MAX_STEP", "gnnrl/contracts/moves.py"),
    ("TRAIN_SEED_LIMIT", "gnnrl/contracts/seeds.py"),
    ("EVAL_SEED_BASE", "gnnrl/contracts/seeds.py"),
    ("VALIDATION_SEED_BASE", "gnnrl/contracts/seeds.py"),
    ("TRAIN_APP_SEEDS", "gnnrl/contracts/seeds.py"),
    ("EVAL_APP_SEEDS", "gnnrl/contracts/seeds.py"),
])
def test_each_contract_constant_is_defined_once(name, home):
    assert module_level_definitions(name) == [home]


def test_the_seed_ranges_do_not_overlap():
    assert seeds.TRAIN_SEED_LIMIT <= seeds.EVAL_SEED_BASE < seeds.VALIDATION_SEED_BASE
    assert not set(seeds.TRAIN_APP_SEEDS) & set(seeds.EVAL_APP_SEEDS)


def test_the_moves_are_nothing_then_up_then_down_by_at_most_max_step():
    from gnnrl.core.envs.moves import DELTAS

    assert moves.NUM_MOVES == len(DELTAS) == 15
    assert list(DELTAS) == [0, *range(1, moves.MAX_STEP + 1), *range(-1, -moves.MAX_STEP - 1, -1)]
