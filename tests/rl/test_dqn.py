import pytest
import torch

from trainwright.config.rl import rl_config
from trainwright.errors import TrainwrightError
from trainwright.rl.dqn import DQN, linear_epsilon
from trainwright.rl.replay import ReplayBuffer


def test_epsilon_falls_linearly_then_stays():
    values = [linear_epsilon(step, start=1.0, end=0.1, duration=1000) for step in (0, 250, 500, 1000, 5000)]
    assert values == pytest.approx([1.0, 0.775, 0.55, 0.1, 0.1])
    assert linear_epsilon(0, start=1.0, end=0.05, duration=0) == 0.05  # exploration_fraction 0: greedy from the start


def test_dqn_epsilon_follows_the_budget_fraction():
    algo = {"name": "dqn", "steps": 1000, "exploration_fraction": 0.5, "epsilon_end": 0.2}
    config = rl_config({"env": {"id": "CartPole-v1"}, "algo": algo})
    agent = DQN(config)
    agent.env_steps = 250
    assert agent.epsilon() == pytest.approx(0.6)
    agent.env_steps = 900
    assert agent.epsilon() == pytest.approx(0.2)


def test_replay_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=5, obs_size=1)
    for start in (0, 3, 6):  # three vector steps of 3 environments: 9 transitions into 5 rows
        ids = torch.arange(start, start + 3, dtype=torch.float32)
        buffer.add(ids[:, None], ids.long(), ids, ids[:, None] + 0.5, torch.zeros(3))
    assert buffer.size == 5 and buffer.pos == 4
    # rows 0-3 hold transitions 5-8 (written after the wrap), row 4 still transition 4
    assert buffer.rewards.tolist() == [5.0, 6.0, 7.0, 8.0, 4.0]
    assert buffer.next_obs[:, 0].tolist() == [5.5, 6.5, 7.5, 8.5, 4.5]
    obs, actions, rewards, next_obs, _ = buffer.sample(64, torch.Generator().manual_seed(0))
    assert set(rewards.tolist()) <= {4.0, 5.0, 6.0, 7.0, 8.0}
    torch.testing.assert_close(obs[:, 0], rewards)  # each sampled row stays one transition
    torch.testing.assert_close(actions.float(), rewards)
    torch.testing.assert_close(next_obs[:, 0], rewards + 0.5)


def test_replay_buffer_state_round_trip():
    buffer = ReplayBuffer(capacity=4, obs_size=2)
    rewards, terminated = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 0.0])
    buffer.add(torch.ones(3, 2), torch.tensor([0, 1, 0]), rewards, torch.zeros(3, 2), terminated)
    copy = ReplayBuffer(capacity=4, obs_size=2)
    copy.load_state_dict(buffer.state_dict())
    assert (copy.pos, copy.size) == (3, 3)
    torch.testing.assert_close(copy.terminated, buffer.terminated)


def test_dqn_refuses_continuous_actions_and_names_the_fix():
    with pytest.raises(TrainwrightError, match="dqn needs Discrete actions, but Pendulum-v1 has continuous .* use algo.name: ppo"):  # noqa: E501
        DQN(rl_config({"env": {"id": "Pendulum-v1"}, "algo": {"name": "dqn"}}))


def test_a_short_dqn_run_learns_on_replayed_transitions():
    config = rl_config({
        "env": {"id": "CartPole-v1"},
        "algo": {"name": "dqn", "steps": 600, "learning_starts": 100, "train_freq": 50, "gradient_steps": 5, "batch_size": 32,
                 "anneal_lr": True, "lr": 1e-3},
    })
    seen = []

    class Watch:
        def on_train_begin(self, agent): ...
        def on_train_end(self, agent): ...
        def on_update(self, agent, progress):
            seen.append(progress)

    agent = DQN(config).train([Watch()])
    assert agent.env_steps == 600 and agent.buffer.size == 600
    assert agent.gradient_steps == 5 * 11  # every round that ended at step 100 or later trained
    assert "q_loss" in seen[-1].metrics and seen[-1].metrics["epsilon"] < 1.0
    assert seen[0].metrics["lr"] == pytest.approx(1e-3) and seen[-1].metrics["lr"] == pytest.approx(1e-3 * 50 / 600)
