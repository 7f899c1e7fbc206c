"""The accuracy-matrix measures on hand-made matrices, checked against the formulas by hand."""

import math

import numpy as np
import pytest
import torch

from trainwright.continual.measures import average_accuracy, average_accuracy_curve, backward_transfer, forgetting, summary

NAN = float("nan")
# After task 1: 0.9 on task 1. After task 2: task 1 rose to 0.95 (positive transfer), task 2 at 0.8.
# After task 3: task 1 fell to 0.5, task 2 to 0.6, task 3 at 0.9.
R = [[0.9, NAN, NAN], [0.95, 0.8, NAN], [0.5, 0.6, 0.9]]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert average_accuracy(R) == pytest.approx((0.5 + 0.6 + 0.9) / 3)
    assert average_accuracy_curve(R) == pytest.approx([0.9, (0.95 + 0.8) / 2, (0.5 + 0.6 + 0.9) / 3])


def test_forgetting_measures_the_fall_from_the_best_earlier_accuracy():
    # Chaudhry 2018: task 1's best before the end is 0.95 (after task 2), not 0.9 (right after learning it).
    assert forgetting(R) == pytest.approx(((0.95 - 0.5) + (0.8 - 0.6)) / 2)


def test_backward_transfer_compares_with_the_accuracy_right_after_learning():
    # Lopez-Paz & Ranzato 2017: R[T, j] - R[j, j], so task 1 counts 0.5 - 0.9.
    assert backward_transfer(R) == pytest.approx(((0.5 - 0.9) + (0.6 - 0.8)) / 2)


def test_no_forgetting_and_positive_transfer():
    kept = [[0.8, NAN], [0.9, 0.95]]
    assert forgetting(kept) == pytest.approx(-0.1)  # improved past its best: negative forgetting
    assert backward_transfer(kept) == pytest.approx(0.1)


def test_inputs_numpy_torch_and_lists_agree_and_shapes_are_checked():
    assert forgetting(np.array(R)) == forgetting(R) == pytest.approx(forgetting(torch.tensor(R)))  # float32 tensor
    assert math.isnan(forgetting([[0.7]])) and math.isnan(backward_transfer([[0.7]]))
    with pytest.raises(ValueError, match=r"\(T, T\)"):
        forgetting([[0.5, 0.6, 0.7]])
    assert average_accuracy([[0.5, 0.6, 0.7]]) == pytest.approx(0.6)  # the joint bound's single row


def test_summary_is_json_ready():
    out = summary(R)
    assert out["matrix"][0] == [0.9, None, None]
    assert out["forgetting"] == pytest.approx(0.325) and out["backward_transfer"] == pytest.approx(-0.3)
