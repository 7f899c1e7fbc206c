import importlib.util
import textwrap

import numpy as np
import pytest
import torch

from trainwright.config.rl import EnvConfig, rl_config
from trainwright.errors import TrainwrightError
from trainwright.rl.envs import action_spec, env_state, load_env_state, make_envs
from trainwright.rl.ppo import PPO


def test_an_unknown_id_is_one_line_with_a_suggestion():
    with pytest.raises(TrainwrightError) as info:
        make_envs(EnvConfig(id="CartPol-v1"))
    message = str(info.value)
    assert "\n" not in message
    assert "env.id 'CartPol-v1' is not a gymnasium environment; did you mean CartPole-v1" in message


def test_an_unimportable_user_class_says_what_to_do():
    with pytest.raises(TrainwrightError, match="cannot import nowhere_pkg.envs .* install it or run from the folder"):
        make_envs(EnvConfig(id="nowhere_pkg.envs:Thing"))


@pytest.mark.skipif(importlib.util.find_spec("Box2D") is not None, reason="Box2D is installed here")
def test_box2d_without_its_package_names_the_extra():
    missing = r"env.id 'LunarLander-v3' needs a package that is not installed: pip install 'trainwright\[box2d\]'"
    with pytest.raises(TrainwrightError, match=missing):
        make_envs(EnvConfig(id="LunarLander-v3"))


def test_a_users_own_environment_class_trains(tmp_path, monkeypatch):
    (tmp_path / "my_corridor.py").write_text(textwrap.dedent('''
        import gymnasium as gym
        import numpy as np

        class Corridor(gym.Env):
            """Walk right (action 1) to the end of a corridor of ``length`` cells."""

            def __init__(self, length=5):
                self.length = length
                self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
                self.action_space = gym.spaces.Discrete(2)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.cell = 0
                return np.array([0.0], np.float32), {}

            def step(self, action):
                self.cell = max(0, self.cell + (1 if action == 1 else -1))
                done = self.cell >= self.length
                return np.array([self.cell / self.length], np.float32), 1.0 if done else -0.1, done, False, {}
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = rl_config({
        "env": {"id": "my_corridor:Corridor", "n_envs": 2, "kwargs": {"length": 4}, "max_episode_steps": 30},
        "algo": {"name": "ppo", "steps": 2048, "n_steps": 64, "lr": 3e-3},
    })
    agent = PPO(config).train()
    assert agent.envs.envs[0].unwrapped.length == 4
    assert agent.policy.act(torch.tensor([[0.0], [0.5]])).tolist() == [1, 1]  # walks right


def test_env_state_round_trip_continues_the_same_trajectory():
    envs = make_envs(EnvConfig(id="Acrobot-v1", n_envs=2, max_episode_steps=7))
    envs.reset(seed=3)
    for _ in range(4):
        envs.step(np.array([0, 2]))
    saved = env_state(envs)
    expected = [envs.step(np.array([1, 2]))[0] for _ in range(6)]  # crosses the time limit: a reset draws from the RNG
    fresh = make_envs(EnvConfig(id="Acrobot-v1", n_envs=2, max_episode_steps=7))
    fresh.reset(seed=99)
    assert load_env_state(fresh, saved) is True
    again = [fresh.step(np.array([1, 2]))[0] for _ in range(6)]
    np.testing.assert_array_equal(np.stack(expected), np.stack(again))


def test_continuous_action_spaces_are_described_with_their_bounds():
    spec = action_spec(make_envs(EnvConfig(id="Pendulum-v1")))
    assert not spec.discrete and spec.size == 1 and spec.low.tolist() == [-2.0] and spec.high.tolist() == [2.0]
