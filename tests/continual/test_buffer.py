"""The replay buffer: class-balanced, of the set size, reproducible, saved and loaded as safetensors."""

import pytest
import torch

from trainwright.continual.buffer import ReplayBuffer, balanced_quota
from trainwright.errors import TrainwrightError


def rows(classes: list[int], per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) features whose first column is a unique row id, and labels (N,)."""
    y = torch.tensor(classes).repeat_interleave(per_class)
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.arange(len(y), dtype=torch.float32).unsqueeze(1) + 1000 * seed, torch.randn(len(y), 2, generator=g)], 1)
    return x, y


def test_quota_is_as_equal_as_the_classes_allow():
    assert balanced_quota(torch.tensor([50, 50, 50, 50]), 20).tolist() == [5, 5, 5, 5]
    assert balanced_quota(torch.tensor([50, 3, 50]), 20).tolist() == [9, 3, 8]  # spare of the small class shared
    assert balanced_quota(torch.tensor([4, 4]), 20).tolist() == [4, 4]  # never more than there is
    assert balanced_quota(torch.tensor([10, 0, 10]), 5).tolist() == [3, 0, 2]


def test_buffer_is_class_balanced_of_the_set_size_after_each_task():
    buffer = ReplayBuffer(size=24, seed=0)
    buffer.add(*rows([0, 1], 60))
    assert len(buffer) == 24 and buffer.y.bincount().tolist() == [12, 12]
    buffer.add(*rows([2, 3], 60, seed=1))
    assert len(buffer) == 24 and buffer.y.bincount().tolist() == [6, 6, 6, 6]
    buffer.add(*rows([4, 5], 40, seed=2))
    assert len(buffer) == 24 and buffer.y.bincount().tolist() == [4] * 6
    assert buffer.x.shape == (24, 3)


def test_share_keeps_that_share_of_the_old_rows():
    buffer = ReplayBuffer(share=0.1, seed=0)
    buffer.add(*rows([0, 1], 55))
    assert len(buffer) == 11  # floor(0.1 * 110): at most the share
    buffer.add(*rows([2, 3], 55, seed=1))
    # 22 rows: 5 each, and the 2 left to the lowest classes that still have rows (class 1 kept only 5)
    assert len(buffer) == 22 and buffer.y.bincount().tolist() == [6, 5, 6, 5]


def test_the_choice_is_reproducible_and_depends_on_the_seed():
    def fill(seed: int) -> ReplayBuffer:
        buffer = ReplayBuffer(size=10, seed=seed)
        buffer.add(*rows([0, 1], 50))
        buffer.add(*rows([2, 3], 50, seed=1))
        return buffer

    assert torch.equal(fill(0).x, fill(0).x) and torch.equal(fill(0).y, fill(0).y)
    assert not torch.equal(fill(0).x, fill(1).x)


def test_a_shrinking_quota_keeps_the_rows_chosen_first():
    buffer = ReplayBuffer(size=20, seed=0)
    buffer.add(*rows([0, 1], 50))
    before = set(buffer.x[:, 0].tolist())
    buffer.add(*rows([2, 3], 50, seed=1))
    assert set(buffer.x[buffer.y < 2, 0].tolist()) < before  # a subset of the old choice, not a new draw


def test_a_buffer_larger_than_the_old_data_is_an_error_with_the_fix():
    buffer = ReplayBuffer(size=500)
    with pytest.raises(TrainwrightError, match=r"500 rows is larger than the old training data \(120 rows\).*at most 120"):
        buffer.add(*rows([0, 1], 60))


def test_save_and_load_round_trip_and_continue_the_same_choice(tmp_path):
    buffer = ReplayBuffer(size=12, seed=3)
    buffer.add(*rows([0, 1], 30))
    buffer.save(tmp_path / "replay.safetensors")
    loaded = ReplayBuffer.load(tmp_path / "replay.safetensors")
    assert torch.equal(loaded.x, buffer.x) and torch.equal(loaded.y, buffer.y)
    assert (loaded.size, loaded.seed, loaded.seen_rows) == (12, 3, 60)
    buffer.add(*rows([2], 30, seed=1))
    loaded.add(*rows([2], 30, seed=1))
    assert torch.equal(loaded.x, buffer.x)


def test_loading_something_else_says_so(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"not a buffer")
    with pytest.raises(TrainwrightError, match="is not a replay buffer"):
        ReplayBuffer.load(tmp_path / "x.safetensors")


def test_samples_come_from_the_buffer():
    buffer = ReplayBuffer(size=8, seed=0)
    buffer.add(*rows([0, 1], 20))
    x, _ = buffer.sample(100, torch.Generator().manual_seed(0))
    assert x.shape == (100, 3) and set(x[:, 0].tolist()) <= set(buffer.x[:, 0].tolist())
