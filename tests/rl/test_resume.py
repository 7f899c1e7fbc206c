"""A killed run resumed from its last checkpoint ends with the same policy, bit for bit, as one never stopped."""

import pytest
import torch

from trainwright.config.rl import rl_config
from trainwright.rl.agent import Observer
from trainwright.rl.evaluation import Evaluator
from trainwright.rl.train import train, training_state
from trainwright.rundir import RunDir
from trainwright.training.checkpoint import load_state, save_state

RUNS = {
    # Small budgets; a 12-step time limit puts truncations (bootstrapped) and resets inside the rollouts;
    # observation and reward normalization put running statistics in the state.
    "ppo": {"algo": {"name": "ppo", "steps": 480, "n_steps": 20, "minibatch_size": 16, "epochs": 2}, "normalize": True},
    "dqn": {"algo": {"name": "dqn", "steps": 480, "learning_starts": 60, "train_freq": 20, "gradient_steps": 4, "batch_size": 16,
                     "buffer_size": 200, "target_update_interval": 50}, "normalize": False},
    "reinforce": {"algo": {"name": "reinforce", "steps": 480, "n_steps": 20}, "normalize": True},
}


def config(name):
    run = RUNS[name]
    return rl_config({
        "seed": 3,
        "env": {"id": "CartPole-v1", "n_envs": 2, "max_episode_steps": 12,
                "normalize_obs": run["normalize"], "normalize_reward": run["normalize"]},
        "algo": run["algo"], "model": {"hidden": [16]}, "evaluate": {"interval": 120, "episodes": 2, "final_episodes": 2},
    })


class KillAfter(Observer):
    """Checkpoint after every update (through the real file format), and die after ``updates``."""

    def __init__(self, path, evaluator, updates):
        self.path, self.evaluator, self.updates = path, evaluator, updates

    def on_update(self, agent, progress):
        save_state(RunDir(self.path.parent), self.path, training_state(agent, self.evaluator))
        if progress.updates == self.updates:
            agent.request_stop("killed")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_resume_mid_run_equals_an_uninterrupted_run(tmp_path, name):
    whole = train(config(name))

    evaluator = Evaluator(config(name))
    killed = train(config(name), [KillAfter(tmp_path / "ckpt.safetensors", evaluator, updates=4)], evaluator=evaluator)
    assert killed.agent.stop_reason == "killed" and 0 < killed.agent.env_steps < whole.agent.env_steps

    resumed = train(config(name), resume=load_state(tmp_path / "ckpt.safetensors"))
    assert resumed.agent.env_steps == whole.agent.env_steps and resumed.agent.updates == whole.agent.updates
    for (key, a), b in zip(whole.agent.policy.state_dict().items(), resumed.agent.policy.state_dict().values()):
        assert torch.equal(a, b), key
    assert [h["mean"] for h in resumed.evaluator.history] == [h["mean"] for h in whole.evaluator.history]
    assert resumed.final.returns.tolist() == whole.final.returns.tolist()
