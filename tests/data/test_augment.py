"""Augmentation changes training pixels, never labels, and never reaches evaluation or prediction;
and a training epoch decodes no image (the cache's counter shows it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console

import trainwright as tw
from trainwright.configure import load_config
from trainwright.data.augment import BatchAugment, build_augment
from trainwright.data.batches import TensorBatches
from trainwright.data.decode import decode_count
from trainwright.data.prepare import prepare_data, with_input_stage
from trainwright.data.shapes import make_shapes
from trainwright.errors import TrainwrightError
from trainwright.evaluate.metrics import predict_outputs
from trainwright.models.registry import build_model
from trainwright.recipes.setup import build_fit
from trainwright.rundir import RunDir
from trainwright.training.callbacks import Callback
from trainwright.training.loop import fit

QUIET = Console(quiet=True)
EVERY_STEP = [{"name": "hflip", "p": 1.0}, {"name": "rotation", "degrees": 30}, {"name": "pad_crop", "padding": 2},
              {"name": "resized_crop"}, {"name": "color_jitter", "p": 1.0}, {"name": "noise", "p": 1.0},
              {"name": "cutout", "p": 1.0}, {"name": "vflip"}]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("augment") / "shapes"
    make_shapes(folder, per_class=10, size=16)
    return folder


def config(folder: Path, augment: list, epochs: int = 1) -> dict:
    return {"data": {"source": str(folder), "augment": augment},
            "model": {"type": "cnn", "widths": [8, 16], "convs": 1},
            "train": {"epochs": epochs, "batch_size": 8, "early_stopping": {"enabled": False}}}


def test_augmentation_changes_pixels_but_never_labels(shapes):
    data = prepare_data(load_config(config(shapes, EVERY_STEP)).data)
    assert isinstance(data.train_transform, BatchAugment)
    plain = TensorBatches(data.x_train, data.y_train, 8)
    augmented = TensorBatches(data.x_train, data.y_train, 8, transform=data.train_transform)
    torch.manual_seed(0)
    pairs = zip(plain.epoch(torch.Generator().manual_seed(1)), augmented.epoch(torch.Generator().manual_seed(1)))
    for (x, y), (x_aug, y_aug) in pairs:
        assert torch.equal(y, y_aug)  # same rows, same labels, same order
        assert x.dtype == torch.uint8 and x_aug.dtype == torch.float32 and x_aug.shape == x.shape
        assert 0 <= float(x_aug.min()) and float(x_aug.max()) <= 1
        changed = (x_aug - x.float() / 255).abs().flatten(1).amax(1) > 0.05  # (B,) per image
        assert changed.all()
    # The cache itself is untouched: augmentation works on the batch, not the data.
    assert torch.equal(data.x_train, prepare_data(load_config(config(shapes, [])).data).x_train)


def test_augmentation_is_off_at_evaluation_and_prediction(shapes, tmp_path):
    run = tw.train(config(shapes, EVERY_STEP), runs_dir=tmp_path, name="aug", console=QUIET)
    model = tw.load(run.dir)
    assert not any(isinstance(m, BatchAugment) for m in model.module.modules())
    first, second = model.predict_proba(shapes), model.predict_proba(shapes)
    assert (first == second).all()  # a random transform would make these differ
    # The test metrics were computed on the plain images: recomputing them gives the same accuracy.
    data = prepare_data(model.config.data)
    outputs = predict_outputs(model.module, data.x_test)
    accuracy = float((outputs.argmax(1) == data.y_test).float().mean())
    assert accuracy == pytest.approx(run.metrics["test"]["accuracy"])


class DecodeCounter(Callback):
    def __init__(self):
        self.after_epoch: list[int] = []

    def on_epoch_end(self, fit, logs):
        self.after_epoch.append(decode_count())


def test_training_epochs_decode_no_image(shapes, tmp_path):
    cfg = load_config(config(shapes, [{"name": "hflip"}], epochs=2))
    data = prepare_data(cfg.data)
    decoded = decode_count()
    assert data.cache.decoded == 30
    module = with_input_stage(data.preprocessor, build_model(cfg.model, data.input_shape, data.preprocessor.n_outputs))
    run = build_fit(cfg, module, data, torch.device("cpu"), RunDir.create(tmp_path, "r"), QUIET)
    counter = DecodeCounter()
    run.callbacks.append(counter)
    fit(run)
    assert run.epoch == 2 and counter.after_epoch == [decoded, decoded]
    assert data.cache.decoded == 30


def test_unknown_augmentations_list_the_allowed_ones(shapes):
    with pytest.raises(
        TrainwrightError,
        match="unknown augmentation 'blur'; allowed: hflip, vflip, rotation, resized_crop, pad_crop, color_jitter, noise, cutout",
    ):
        load_config(config(shapes, [{"name": "blur"}]))
    with pytest.raises(TrainwrightError, match="unknown key 'data.augment.0.rotation.degree'"):
        load_config(config(shapes, [{"name": "rotation", "degree": 5}]))
    assert [step.name for step in load_config(config(shapes, ["hflip", "cutout"])).data.augment] == ["hflip", "cutout"]
    with pytest.raises(TrainwrightError, match="saturation and hue need rgb"):
        build_augment(load_config(config(shapes, ["color_jitter"])).data.augment, channels=1, size=(8, 8))
    with pytest.raises(TrainwrightError, match="data.augment applies to images"):
        prepare_data(load_config({"data": {"source": "iris", "augment": ["hflip"]}}).data)
