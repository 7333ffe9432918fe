"""The training scenario mix: traces x peaks x topology changes."""

from __future__ import annotations

import pytest

from gnnrl.core.agents.rollout import episode_seed
from gnnrl.core.agents.scenario_mix import training_scenarios
from gnnrl.sim import load_app_spec

APP = load_app_spec("onlineboutique")


@pytest.mark.parametrize(
    ("variant", "events"),
    [
        ("static", []),
        ("add", [(72, "add reviewservice")]),
        ("remove", [(120, "remove adservice")]),
        ("churn", [(48, "add reviewservice"), (144, "remove recommendationservice"),
                   (192, "remove reviewservice")]),
    ],
)
def test_topology_variants_add_and_remove_services_at_fixed_fractions(variant, events):
    (sc,) = training_scenarios(APP, ["diurnal"], [200.0], [variant], max_steps=240)
    assert [(e.step, e.describe()) for e in sc.events] == events
    assert sc.peak_rps == 200.0 and sc.trace == "diurnal"


def test_mix_is_the_full_product_of_its_axes():
    mix = training_scenarios(APP, ["diurnal", "flash"], [150.0, 300.0], ["static", "add"], 240)
    assert len(mix) == 8 and len({s.name for s in mix}) == 8


def test_unknown_topology_variant_is_refused():
    with pytest.raises(ValueError, match="twist"):
        training_scenarios(APP, ["diurnal"], [100.0], ["twist"], 240)


def test_training_episode_seeds_stay_below_the_evaluation_range():
    seeds = {episode_seed(run, env, ep) for run in (0, 7, 999) for env in range(16)
             for ep in range(50)}
    assert max(seeds) < 1000 and min(seeds) >= 0
    assert len(seeds) > 500  # spread, not a handful of repeats
