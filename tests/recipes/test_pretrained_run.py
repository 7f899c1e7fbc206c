"""A run that starts from pretrained timm weights in a local file: the supervised recipe loads them strictly,
freezes and unfreezes as for a run backbone, normalizes the inputs as the weights expect, and the trained
run predicts without the file. Skipped where the ``vision`` extra (timm, torchvision) cannot be imported.
"""

from __future__ import annotations

import io
import json
import os

import pytest
import torch
import yaml
from helpers import expect_clear_error, run_cli
from rich.console import Console
from safetensors.torch import load_file, save_file

from trainwright.configure import load_config
from trainwright.data.prepare import prepare_data
from trainwright.errors import TrainwrightError
from trainwright.models.pretrained import import_timm
from trainwright.models.pretrained_weights import layers
from trainwright.recipes.setup import build_fit, build_module
from trainwright.rundir import RunDir
from trainwright.training.transfer import Unfreeze

NAME = "test_resnet"  # timm's own small test model (0.37M parameters): its pretrained_cfg says 160x160, mean and std 0.5
SOURCE = "timm pretrained_cfg of timm/test_resnet.r160_in1k"


@pytest.fixture(autouse=True, scope="module")
def vision():
    """timm, imported when this module's tests run (not at collection, in every worker)."""
    try:
        return import_timm()
    except TrainwrightError as error:
        if os.environ.get("TRAINWRIGHT_VISION_TESTS"):  # `make test-vision` set up the extra: these tests must run
            pytest.fail(f"the vision extra is not usable in the vision venv: {error}")
        pytest.skip(f"the vision extra is not usable here: {error}")


@pytest.fixture(scope="module")
def weights(tmp_path_factory, vision) -> dict:
    """A stand-in for a downloaded file: a 1000-class test_resnet's state dict, saved as safetensors."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / f"{NAME}.safetensors"
    save_file({k: v.contiguous() for k, v in vision.create_model(NAME, num_classes=1000).state_dict().items()}, str(path))
    return {"path": path, "tensors": load_file(str(path))}


def config(weights_path, **train) -> dict:
    return {
        "data": {"source": "digits-images", "classes": [0, 1, 2], "image": {"size": 16}, "augment": []},
        "model": {"type": "timm", "name": NAME, "pretrained": str(weights_path)},
        "train": {"epochs": 2, "batch_size": 32, **train},
        "evaluate": {"baseline": False},
    }


def test_the_weights_size_channels_and_normalization_reach_the_input_stage(weights):
    model = {"type": "timm", "name": NAME, "pretrained": "w.safetensors"}
    cfg = load_config({"data": {"source": "digits-images"}, "model": model})
    assert (tuple(cfg.data.image.size), cfg.data.image.mode) == ((160, 160), "rgb")  # the weights', not the set's 8x8 gray
    cfg = load_config(config(weights["path"]))
    assert (cfg.data.image.size, cfg.data.image.mode) == (16, "rgb")  # a size the user set is kept; grayscale digits -> rgb
    data = prepare_data(cfg.data)
    module = build_module(cfg, data)
    facts = data.preprocessor.facts()
    assert (facts["mean"], facts["std"], facts["statistics"]) == ([0.5] * 3, [0.5] * 3, SOURCE)
    assert module.normalize.mean.flatten().tolist() == [0.5] * 3  # the input stage normalizes with them


def test_the_recipe_loads_strictly_freezes_trains_the_head_at_lr_and_the_backbone_at_its_share(tmp_path, weights):
    cfg = load_config(config(weights["path"], unfreeze_at_epoch=2, backbone_lr_scale=0.1))
    data = prepare_data(cfg.data)
    module = build_module(cfg, data)
    state = module.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights["tensors"].items() if not k.startswith("fc."))
    assert not any(p.requires_grad for layer in layers(module) for p in layer) and module.model.fc.weight.requires_grad
    fit = build_fit(cfg, module, data, torch.device("cpu"), RunDir(tmp_path / "run"), Console(file=io.StringIO()))
    assert [g["lr"] for g in fit.optimizer.param_groups] == [1e-3, pytest.approx(1e-4)]
    assert fit.optimizer.param_groups[0]["params"] == [module.model.fc.weight, module.model.fc.bias]
    (unfreeze,) = [cb for cb in fit.callbacks if isinstance(cb, Unfreeze)]
    assert unfreeze.at == 2
    unfrozen = config(weights["path"], unfreeze_at_epoch=2)
    unfrozen["model"]["freeze"] = "none"
    with pytest.raises(TrainwrightError, match="train.unfreeze_at_epoch unfreezes a frozen model.backbone"):
        load_config(unfrozen)


def test_a_pretrained_run_trains_and_predicts_through_the_cli_without_the_weights_file(tmp_path, weights):
    path = tmp_path / "published.safetensors"
    path.write_bytes(weights["path"].read_bytes())
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config(path)))
    result = run_cli("train", str(tmp_path / "run.yaml"), "--runs-dir", str(tmp_path / "runs"), "--name", "pre", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (f"pretrained: timm {NAME} from {path}, 5 of 5 layers frozen" in result.stdout
            and f"mean 0.500 0.500 0.500, std 0.500 0.500 0.500 ({SOURCE}" in result.stdout), result.stdout
    run = tmp_path / "runs" / "pre"
    facts = json.loads((run / "model.json").read_text())["backbone"]
    assert (facts["weights"], facts["frozen_layers"], facts["head"], facts["input"]["size"]) == (str(path), 5, "fc", [160, 160])
    trained = load_file(str(run / "model.safetensors"))
    published = weights["tensors"]
    assert torch.equal(trained["model.layer4.0.conv1.weight"], published["layer4.0.conv1.weight"])  # frozen: as loaded
    assert trained["model.fc.weight"].shape == (3, published["fc.weight"].shape[1])  # the new head, 3 classes

    path.unlink()  # a trained run needs its own weights only
    images = tmp_path / "images"
    assert run_cli("make-shapes", str(images), "--per-class", "2", "--size", "16").returncode == 0
    predicted = run_cli("predict", str(run), str(images), "-o", str(tmp_path / "predictions.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 1 + 6

    missing = run_cli("train", str(tmp_path / "run.yaml"), "--runs-dir", str(tmp_path / "runs"), "--name", "again")
    expect_clear_error(missing, f"model.pretrained: {path} does not exist", "hf download timm/test_resnet.r160_in1k")
    assert not (tmp_path / "runs" / "again").exists()
