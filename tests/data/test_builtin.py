import numpy as np
import pandas as pd
import pytest
import torch

from trainwright.config import DataConfig
from trainwright.configure import validate_config
from trainwright.data.builtin import BUILTINS
from trainwright.data.tabular import prepare_tabular

EXPECTED = {  # name: (task, rows, feature columns after cleaning, classes)
    "digits": ("multiclass", 1797, 61, 10),  # 3 always-zero pixels are dropped as constant
    "iris": ("multiclass", 150, 4, 3),  # iris holds one exact duplicate row, kept beside its twin (grouped split)
    "wine": ("multiclass", 178, 13, 3),
    "breast_cancer": ("binary", 569, 30, 2),
    "diabetes": ("regression", 442, 10, 0),
    "linear": ("regression", 6, 1, 0),
    "ring": ("multiclass", 100_000, 2, 8),  # PacGAN's mixtures: 2-D points labelled by the mode they were drawn from
    "grid": ("multiclass", 100_000, 2, 25),
}


def test_every_builtin_is_tested():
    # The image built-in (digits-images) is tested with the image data in test_images.py.
    assert {name for name, builtin in BUILTINS.items() if builtin.modality == "tabular"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_prepares_with_its_task_and_shape(name):
    task, rows, width, n_classes = EXPECTED[name]
    builtin = BUILTINS[name]
    assert builtin.task == task
    assert builtin.target in builtin.load().columns

    data = prepare_tabular(DataConfig(source=name))

    assert data.task == task and data.name == name
    assert data.summary["rows"]["after_cleaning"] == rows
    assert data.x_train.shape[1] == data.preprocessor.n_features == width
    assert len(data.preprocessor.classes) == n_classes
    if data.held_out:
        assert len(data.x_train) + len(data.x_val) + len(data.x_test) == rows
    if task == "regression":
        assert data.y_train.shape == (len(data.x_train), 1) and data.y_train.dtype == torch.float32
    else:
        assert data.y_train.dtype == torch.int64
        assert data.preprocessor.n_outputs == (1 if task == "binary" else n_classes)


def test_labels_read_as_names_where_scikit_learn_has_them():
    assert prepare_tabular(DataConfig(source="iris")).preprocessor.classes == ["setosa", "versicolor", "virginica"]
    # Sorted labels make 'malignant' the positive class (index 1) of the binary task.
    assert prepare_tabular(DataConfig(source="breast_cancer")).preprocessor.classes == ["benign", "malignant"]


def test_linear_is_six_points_of_2x_minus_1_and_too_small_to_split():
    frame = BUILTINS["linear"].load()
    assert frame["x"].tolist() == [-1, 0, 1, 2, 3, 4]
    assert (frame["y"] == 2 * frame["x"] - 1).all()
    data = prepare_tabular(DataConfig(source="linear"))
    assert data.held_out is False
    assert len(data.x_train) == len(data.x_val) == len(data.x_test) == 6


def test_linear_defaults_make_a_single_neuron_full_batch_run():
    cfg = validate_config({"data": {"source": "linear"}})
    assert cfg.model.type == "mlp" and list(cfg.model.hidden) == []
    assert cfg.train.batch_size == "full"
    assert cfg.train.early_stopping.enabled is False
    assert cfg.data.preprocess.numeric == "standard" and cfg.data.preprocess.scale_target
    # The user's keys win over the data set's suggestions.
    assert validate_config({"data": {"source": "linear"}, "train": {"epochs": 7}}).train.epochs == 7


def test_linear_defaults_reach_11_at_x_6():
    """Full-batch gradient descent on the MSE of one neuron, with the default epochs and lr, from a bad start.

    This replays the training the defaults ask for on the real preprocessed tensors, so a change to
    the scaling or to the defaults that breaks `trainwright train --data linear` fails here.
    """
    cfg = validate_config({"data": {"source": "linear"}})
    assert cfg.train.optimizer.name == "sgd" and cfg.train.optimizer.momentum == 0
    data = prepare_tabular(cfg.data)
    x, y = data.x_train.double().numpy(), data.y_train.double().numpy()  # (6, 1), (6, 1)
    w, b = -1.0, 1.0  # the far end of a default init for a 1-input neuron
    for _ in range(cfg.train.epochs):
        error = w * x + b - y
        w, b = w - cfg.train.optimizer.lr * 2 * np.mean(error * x), b - cfg.train.optimizer.lr * 2 * np.mean(error)
    pre = data.preprocessor
    z = pre.transform(pd.DataFrame({"x": [6.0]}))
    assert pre.decode_target(w * z + b)[0] == pytest.approx(11, abs=0.05)
