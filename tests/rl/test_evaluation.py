import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from trainwright.config.rl import EnvConfig
from trainwright.rl.aggregate import iqm, iqm_interval
from trainwright.rl.evaluation import evaluate
from trainwright.rl.gif import render_gif
from trainwright.rl.policies import ActorCritic

CARTPOLE = EnvConfig(id="CartPole-v1")


def policy(seed=0):
    torch.manual_seed(seed)
    return ActorCritic(4, True, 2, [16])


def test_evaluate_plays_exactly_the_episodes_asked_and_is_seeded():
    first = evaluate(policy(), CARTPOLE, episodes=7, seed=5, deterministic=False, max_envs=3)
    again = evaluate(policy(), CARTPOLE, episodes=7, seed=5, deterministic=False, max_envs=3)
    assert len(first.returns) == 7 and first.seed == 5
    np.testing.assert_array_equal(first.returns, again.returns)
    np.testing.assert_array_equal(first.returns, first.lengths)  # CartPole: +1 per step


def test_iqm_trims_a_quarter_each_side_and_the_interval_holds_it():
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(3.5)  # the middle 50%: 2, 3, 4, 5
    result = iqm_interval([480.0, 500.0, 500.0, 500.0, 350.0], resamples=2000)
    assert result.iqm == pytest.approx(1480 / 3)
    assert result.low <= result.iqm <= result.high == 500.0
    assert iqm_interval([500.0] * 5).low == 500.0
    two_tasks = iqm_interval([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]], resamples=2000)
    assert two_tasks.runs == 8 and two_tasks.low < two_tasks.iqm < two_tasks.high


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="rendering needs pygame (the rl extra)")
def test_render_gif_writes_an_animated_episode(tmp_path):
    out = render_gif(policy(), CARTPOLE, tmp_path / "episode.gif", seed=0, every=1, width=160)
    with Image.open(tmp_path / "episode.gif") as image:
        assert out["frames"] == out["length"] + 1  # the first observation, then one frame per step
        assert image.is_animated and 2 <= image.n_frames <= out["frames"]  # Pillow merges identical neighbours
        assert image.width == 160
