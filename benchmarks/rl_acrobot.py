"""PPO on Acrobot-v1: must reach a mean return of -100 over 100 evaluation episodes within 200,000 env
steps for at least 4 of 5 seeds (issue 17). Tuned defaults: trainwright/config/rl.py ``TUNED``.

    nice -n 19 python benchmarks/rl_acrobot.py [--seeds 0-4] [--out results.jsonl]
"""

from rl_quality import main

if __name__ == "__main__":
    main([("ppo", "Acrobot-v1", -100.0)], __doc__)
