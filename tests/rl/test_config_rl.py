import pytest

from trainwright.config.rl import RLConfig, rl_config, tuned_defaults
from trainwright.errors import TrainwrightError


def test_tuned_defaults_fill_what_the_user_left_out():
    config = rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "gamma": 0.9}})
    assert (config.env.n_envs, config.algo.n_steps, config.algo.gamma) == (8, 32, 0.9)
    assert config.algo.steps == tuned_defaults("ppo", "CartPole-v1")["algo"]["steps"]
    assert RLConfig.model_validate(config.model_dump(mode="json")) == config  # the resolved config round-trips


def test_an_untuned_pair_gets_the_algorithm_defaults():
    config = rl_config({"env": {"id": "MountainCar-v0"}, "algo": {"name": "dqn"}})
    assert config.env.n_envs == 1 and config.model.activation == "relu" and config.algo.double_q


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "steps": 0}},
         "algo.steps = 0: the step budget must be a positive number"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "dqn", "steps": -5}},
         "algo.steps = -5: the step budget must be a positive number"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "a2c"}},
         "algo.name = 'a2c' is not an algorithm; choose one of ppo, dqn, reinforce"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "steps": 100}},
         "algo.steps = 100 is less than one rollout (env.n_envs * algo.n_steps = 256)"),
        ({"env": {"id": "CartPole-v1"}, "algo": {}}, "algo.name is required"),
        ({"algo": {"name": "ppo"}}, "env.id is required"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "n_step": 3}}, "unknown key 'algo.n_step'"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "minibatch_size": 1000}}, "is larger than a rollout"),
        ({"env": {"id": "CartPole-v1", "n_envs": 0}, "algo": {"name": "ppo"}}, "env.n_envs = 0"),
        ({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo"}, "model": {"hidden": [64, 0]}}, "model.hidden.1 = 0"),
    ],
)
def test_invalid_configs_are_one_line_naming_the_key(raw, fragment):
    with pytest.raises(TrainwrightError, match="invalid rl config") as info:
        rl_config(raw)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_the_example_configs_validate():
    from pathlib import Path

    import yaml

    examples = sorted((Path(__file__).parents[2] / "examples" / "rl").glob("*.yaml"))
    assert len(examples) == 3
    for path in examples:
        config = rl_config(yaml.safe_load(path.read_text()))
        assert config.recipe == "rl" and config.algo.steps > 0
