import torch

from trainwright.rl.returns import gae


def test_gae_matches_a_hand_computed_case_with_an_episode_end():
    # One environment, gamma 0.9, lambda 0.5; the episode ends with step 1, so step 0 sees V(s1) but nothing after it.
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    advantages = gae(rewards, values, dones, last_value=torch.tensor([2.0]), gamma=0.9, lam=0.5)
    # t=2: 3 + 0.9*2.0 - 1.5 = 3.3;  t=1: 2 - 1.0 = 1.0 (ended);  t=0: (1 + 0.9*1.0 - 0.5) + 0.9*0.5*1.0 = 1.85
    torch.testing.assert_close(advantages, torch.tensor([[1.85], [1.0], [3.3]]))


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value_per_environment():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    values = torch.tensor([[0.2, 0.1], [0.3, 0.4], [0.5, 0.6]])
    dones = torch.zeros(3, 2)
    last = torch.tensor([10.0, -1.0])
    advantages = gae(rewards, values, dones, last, gamma=0.5, lam=1.0)
    returns = torch.tensor(
        [[1 + 0.5 + 0.25 + 0.125 * 10, 0 + 0.5 + 0.5 - 0.125], [1 + 0.5 + 0.25 * 10, 1 + 1 - 0.25], [1 + 5.0, 2 - 0.5]]
    )
    torch.testing.assert_close(advantages + values, returns)
