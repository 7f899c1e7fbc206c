"""PPO and DQN on CartPole-v1: each must reach a mean return of 475 over 100 evaluation episodes within
100,000 env steps for at least 4 of 5 seeds (issue 17). Tuned defaults: trainwright/config/rl.py ``TUNED``.

    nice -n 19 python benchmarks/rl_cartpole.py [--algo ppo|dqn] [--seeds 0-4] [--out results.jsonl]
"""

from rl_quality import main

if __name__ == "__main__":
    main([("ppo", "CartPole-v1", 475.0), ("dqn", "CartPole-v1", 475.0)], __doc__)
