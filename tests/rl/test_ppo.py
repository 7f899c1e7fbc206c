import numpy as np
import torch

from trainwright.config.rl import rl_config
from trainwright.rl.evaluation import evaluate
from trainwright.rl.ppo import PPO, clipped_surrogate


def test_clipped_surrogate_on_a_known_case_and_its_gradient():
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.5, 0.5], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0])
    loss = clipped_surrogate(ratio, advantages, clip=0.2)
    # per sample min(r A, clip(r, 0.8, 1.2) A): 0.5, -1, 1.2 (capped), -1.5, -0.8 (capped) -> mean -0.32
    torch.testing.assert_close(loss, torch.tensor(0.32))
    loss.backward()
    # a capped sample gets no gradient; the others get -A / 5
    torch.testing.assert_close(ratio.grad, torch.tensor([-0.2, 0.2, 0.0, 0.2, 0.0]))


def test_a_short_ppo_run_on_cartpole_beats_the_random_policy():
    # The tuned CartPole-v1 settings on a twelfth of the budget, with half the epochs: a few seconds.
    config = rl_config({"env": {"id": "CartPole-v1"}, "algo": {"name": "ppo", "steps": 8192, "epochs": 10}, "seed": 0})
    agent = PPO(config)
    before = evaluate(agent.policy, config.env, episodes=20, seed=123, deterministic=False).mean
    agent.train()
    after = evaluate(agent.policy, config.env, episodes=20, seed=123).mean
    assert before < 40  # a near-uniform policy balances ~22 steps
    assert after > 100 and after > 4 * before, (before, after)  # seed 0 reaches ~300
    assert agent.env_steps == 8192


def test_continuous_actions_train_with_a_gaussian_head():
    algo = {"name": "ppo", "steps": 512, "n_steps": 64, "epochs": 2}
    config = rl_config({"env": {"id": "Pendulum-v1", "n_envs": 2}, "algo": algo})
    agent = PPO(config)
    stds = []

    class Watch:
        def on_train_begin(self, agent): ...
        def on_train_end(self, agent): ...
        def on_update(self, agent, progress):
            stds.append(progress.metrics["action_std"])

    agent.train([Watch()])
    assert len(stds) == 4 and all(np.isfinite(stds))
    actions = agent.policy.act(torch.zeros(3, 3), deterministic=False, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (3, 1)
