import numpy as np

from trainwright.config.rl import rl_config
from trainwright.rl.evaluation import FINAL_SEED_OFFSET, evaluate
from trainwright.rl.train import make_policy, train


def test_a_run_evaluates_on_schedule_and_its_kept_policy_replays_from_saved_weights():
    config = rl_config({
        "seed": 1, "env": {"id": "CartPole-v1", "n_envs": 4},
        "algo": {"name": "reinforce", "steps": 1600, "n_steps": 50},
        "evaluate": {"interval": 400, "episodes": 3, "final_episodes": 5},
    })
    result = train(config)
    assert [h["env_steps"] for h in result.evaluator.history] == [400, 800, 1200, 1600]
    assert result.evaluator.best_return == max(h["mean"] for h in result.evaluator.history)
    assert len(result.final.returns) == 5 and result.final.seed == config.eval_seed + FINAL_SEED_OFFSET

    # What `play` does: rebuild the policy from the config, load the kept weights, play.
    policy = make_policy(config)
    policy.load_state_dict(result.evaluator.best_state)
    replay = evaluate(policy, config.env, 5, config.eval_seed + FINAL_SEED_OFFSET)
    np.testing.assert_array_equal(replay.returns, result.final.returns)
    summary = result.summary()
    assert summary["env_steps"] == 1600 and summary["steps_per_second"] > 0
