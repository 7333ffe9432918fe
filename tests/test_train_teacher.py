"""The imitation teacher is configurable and validated."""

import pytest

from gnnrl.config import ConfigError
from gnnrl.core.agents.train import TrainConfig


@pytest.mark.parametrize("teacher", ["hpa", "hpa-80", "headroom", "oracle", "hpa@dial",
                                     "headroom@dial", "oracle@dial"])
def test_known_teachers_are_accepted(teacher):
    assert TrainConfig(bc_teacher=teacher).bc_teacher == teacher


def test_unknown_teacher_is_refused_with_the_field_named():
    with pytest.raises(ConfigError, match="bc_teacher"):
        TrainConfig(bc_teacher="random")


def test_shipped_training_config_names_its_teacher():
    from gnnrl.evaluation.gnnrl_policy import default_model_dir

    cfg = TrainConfig.load(default_model_dir() / "train_config.json")
    # the shipped model learned the dial from a teacher whose knob follows it
    assert cfg.bc_teacher == "oracle@dial" and cfg.bc_rounds > 0 and cfg.dial == "random"
