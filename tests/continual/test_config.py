"""The continual: config section."""

import pytest
from pydantic import ValidationError

from trainwright.config import Frozen
from trainwright.config.continual import ContinualConfig


def test_defaults_are_replay_of_a_tenth_in_class_incremental():
    cfg = ContinualConfig()
    assert isinstance(cfg, Frozen)
    assert (cfg.strategy, cfg.scenario, cfg.replay.share, cfg.replay.size) == ("replay", "class_incremental", 0.1, None)
    assert cfg.split.classes_per_task == 2 and cfg.split.tasks is None


def test_settings_parse_and_the_section_is_frozen():
    cfg = ContinualConfig.model_validate({"strategy": "lwf", "scenario": "task_incremental", "lwf": {"temperature": 4},
                                          "split": {"tasks": [[0, 1], ["cat"]]}, "replay": {"size": 200}})
    assert cfg.lwf.temperature == 4 and cfg.split.tasks == [[0, 1], ["cat"]] and cfg.replay.share is None
    with pytest.raises(ValidationError):
        cfg.strategy = "naive"


@pytest.mark.parametrize("raw, fragment", [
    ({"strategy": "gem"}, "strategy"),
    ({"replay": {"size": 10, "share": 0.1}}, "not both"),
    ({"replay": {"share": 1.5}}, "share"),
    ({"ewc": {"strength": 0}}, "strength"),
    ({"split": {"tasks": [[0, 1], [1, 2]]}}, "no class in two tasks"),
    ({"split": {"train": 0.9}}, "split.train"),  # rows are split by data.split; unknown keys are errors
    ({"then": ["b.csv"], "split": {"tasks": [[0], [1]]}}, "give one"),
    ({"then": []}, "at least one"),
    ({"lwf": {"temperature": 2, "alpha": 1}}, "alpha"),  # unknown keys are errors
])
def test_bad_settings_are_named(raw, fragment):
    with pytest.raises(ValidationError, match=fragment):
        ContinualConfig.model_validate(raw)
