"""Pretrained timm/torchvision backbones: strict loading from a local file or cache, new head, freezing, input spec.

The weights are made here (a small model of timm's own test family, saved to tmp_path): nothing is
downloaded. Skipped where the ``vision`` extra (timm, torchvision) is not installed or cannot load.
"""

from __future__ import annotations

import os

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from trainwright.errors import TrainwrightError
from trainwright.models.pretrained import TimmConfig, TorchvisionConfig, build, head_name, import_timm, input_spec
from trainwright.models.pretrained_weights import layers, parameter_groups, split_parameters, start_from_pretrained


@pytest.fixture(autouse=True, scope="module")
def vision():
    """timm and torchvision, imported when this module's tests run (not at collection, in every worker)."""
    try:
        return import_timm()
    except TrainwrightError as error:
        if os.environ.get("TRAINWRIGHT_VISION_TESTS"):  # `make test-vision` set up the extra: these tests must run
            pytest.fail(f"the vision extra is not usable in the vision venv: {error}")
        pytest.skip(f"the vision extra is not usable here: {error}")


NAME = "test_resnet"  # 0.37M parameters; timm's pretrained_cfg: timm/test_resnet.r160_in1k, 160x160, mean 0.5


def published(tmp_path, name=NAME, seed=0):
    """A stand-in for downloaded weights: a 1000-class model of ``name``, saved as safetensors."""
    import timm  # after the vision fixture has checked it loads

    torch.manual_seed(seed)
    source = timm.create_model(name, num_classes=1000)
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    return source.state_dict(), path


def test_weights_load_strictly_from_a_safetensors_file_under_a_new_head(tmp_path):
    weights, path = published(tmp_path)
    cfg = TimmConfig(name=NAME, pretrained=str(path), freeze="none")
    torch.manual_seed(1)
    model = build(cfg, (3, 64, 64), 4)
    facts = start_from_pretrained(model, cfg)
    state = model.state_dict()
    body = [k for k in weights if not k.startswith("fc.")]
    assert all(torch.equal(state[k], weights[k]) for k in body)
    assert facts["tensors_loaded"] == len(body) and facts["head"] == "fc" and facts["weights"] == str(path)
    assert state["fc.weight"].shape == (4, 96)  # new head, sized for the task (the file's is 1000 x 96)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4)


def test_a_pytorch_checkpoint_is_read_with_weights_only_and_a_pickled_model_is_refused(tmp_path, vision):
    weights, _ = published(tmp_path)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": weights, "epoch": 3}, checkpoint)  # a training checkpoint: its state_dict is taken
    cfg = TimmConfig(name=NAME, pretrained=str(checkpoint))
    model = build(cfg, (3, 32, 32), 2)
    start_from_pretrained(model, cfg)
    assert torch.equal(model.state_dict()["conv1.0.weight"], weights["conv1.0.weight"])

    pickled = tmp_path / "whole_model.pt"
    torch.save(vision.create_model(NAME), pickled)  # arbitrary pickled classes: weights_only refuses them
    bad = TimmConfig(name=NAME, pretrained=str(pickled))
    refused = r"whole_model.pt is not a readable weights file.*torch.save\(model.state_dict\(\), path\)"
    with pytest.raises(TrainwrightError, match=refused):
        start_from_pretrained(build(bad, (3, 32, 32), 2), bad)


def test_freezing_leaves_the_backbone_without_gradients_and_the_head_training(tmp_path):
    _, path = published(tmp_path)
    cfg = TimmConfig(name=NAME, pretrained=str(path))  # freeze defaults to all when there are weights
    model = build(cfg, (3, 32, 32), 3)
    facts = start_from_pretrained(model, cfg)
    body, head = split_parameters(model)
    assert facts["freeze"] == "all" and facts["frozen_layers"] == facts["layers"] == 5  # stem + 4 stages (timm's coarse groups)
    assert facts["frozen_parameters"] == sum(p.numel() for p in body)
    groups = parameter_groups(model, lr=1e-2, backbone_lr_scale=0.1)
    optimizer = torch.optim.SGD(groups, lr=1e-2)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-2, pytest.approx(1e-3)]
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    optimizer.step()
    assert all(p.grad is None for p in body) and all(p.grad is not None for p in head)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert changed == [any(p is h for h in head) for p in model.parameters()]  # only the head moved

    partly = TimmConfig(name=NAME, pretrained=str(path), freeze=2)
    model = build(partly, (3, 32, 32), 3)
    start_from_pretrained(model, partly)
    trainable = [all(p.requires_grad for p in layer) for layer in layers(model)]
    assert trainable == [False, False, True, True, True]
    too_many = TimmConfig(name=NAME, pretrained=str(path), freeze=6)
    with pytest.raises(TrainwrightError, match="5 layers before its head"):
        start_from_pretrained(build(too_many, (3, 32, 32), 3), too_many)


def test_a_wrong_file_a_wrong_shape_and_a_missing_file_are_clear_errors(tmp_path):
    weights, _ = published(tmp_path)
    other = {**weights, "conv1.0.weight": weights["conv1.0.weight"][:, :, :2].contiguous()}
    save_file({k: v.contiguous() for k, v in other.items()}, str(tmp_path / "cut.safetensors"))
    cfg = TimmConfig(name=NAME, pretrained=str(tmp_path / "cut.safetensors"))
    model = build(cfg, (3, 32, 32), 2)
    cut = r"1 of \d+ tensors differ: conv1.0.weight: model \[16, 3, 3, 3\] vs weights \[16, 3, 2, 3\]"
    with pytest.raises(TrainwrightError, match=cut):
        start_from_pretrained(model, cfg)
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen when nothing loaded

    _, effnet = published(tmp_path, "test_efficientnet")  # another architecture's weights
    wrong = TimmConfig(name=NAME, pretrained=str(effnet))
    with pytest.raises(TrainwrightError, match=r"tensors differ: .*absent.* and \d+ more. Check model.name"):
        start_from_pretrained(build(wrong, (3, 32, 32), 2), wrong)

    (tmp_path / "noise.safetensors").write_bytes(b"not a weights file")
    noise = TimmConfig(name=NAME, pretrained=str(tmp_path / "noise.safetensors"))
    with pytest.raises(TrainwrightError, match="noise.safetensors is not a readable weights file"):
        start_from_pretrained(build(noise, (3, 32, 32), 2), noise)

    missing = TimmConfig(name=NAME, pretrained=str(tmp_path / "absent.safetensors"))
    where = r"absent.safetensors does not exist; download it .*hf download timm/test_resnet.r160_in1k"
    with pytest.raises(TrainwrightError, match=where):
        start_from_pretrained(build(missing, (3, 32, 32), 2), missing)
    with pytest.raises(TrainwrightError, match="not a timm model; close names: .*test_resnet"):
        build(TimmConfig(name="test_resnett"), (3, 32, 32), 2)


def test_weights_come_from_an_already_filled_hugging_face_cache_and_never_the_network(tmp_path):
    weights, path = published(tmp_path)
    # The hub cache's own layout, as `hf download timm/test_resnet.r160_in1k` leaves it.
    repo = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    path.rename(repo / "snapshots" / "0123abcd" / "model.safetensors")
    cfg = TimmConfig(name=NAME, cache=str(tmp_path / "hub"))
    model = build(cfg, (3, 32, 32), 2)
    facts = start_from_pretrained(model, cfg)
    assert facts["weights"].endswith("snapshots/0123abcd/model.safetensors")
    assert torch.equal(model.state_dict()["layer4.0.conv1.weight"], weights["layer4.0.conv1.weight"])

    empty = TimmConfig(name=NAME, cache=str(tmp_path / "empty"))
    where = r"weights of timm/test_resnet.r160_in1k are not in the Hugging Face cache .*empty.*hf download"
    with pytest.raises(TrainwrightError, match=where):
        start_from_pretrained(build(empty, (3, 32, 32), 2), empty)


def test_the_expected_inputs_come_from_the_models_pretrained_config():
    small = input_spec(TimmConfig(name=NAME))
    assert (small.channels, small.size, small.mean, small.std) == (3, (160, 160), (0.5,) * 3, (0.5,) * 3)
    assert small.interpolation == "bilinear"
    assert small.source == "timm pretrained_cfg of timm/test_resnet.r160_in1k" and not small.fixed_size
    resnet = input_spec(TimmConfig(name="resnet18.tv_in1k"))
    assert resnet.size == (224, 224) and resnet.mean == (0.485, 0.456, 0.406) and resnet.std == (0.229, 0.224, 0.225)
    assert resnet.to_dict()["size"] == [224, 224]
    vit = TimmConfig(name="test_vit", pretrained="vit.safetensors")
    spec = input_spec(vit)
    assert spec.fixed_size  # position embeddings fix the size: the data must be resized to it
    with pytest.raises(TrainwrightError, match=rf"takes only {spec.size[0]}x{spec.size[1]} images .*data.image.size"):
        build(vit, (3, spec.size[0] + 8, spec.size[1]), 2)
    with pytest.raises(TrainwrightError, match="weights take 3-channel images, these have 1; set data.image.mode: rgb"):
        build(TimmConfig(name=NAME, pretrained="w.safetensors"), (1, 32, 32), 2)
    scratch = build(TimmConfig(name=NAME), (1, 32, 32), 2)  # without weights any channel count trains
    assert scratch(torch.randn(2, 1, 32, 32)).shape == (2, 2)


def test_config_keeps_one_weights_source_and_freezes_only_weights():
    assert TimmConfig(name=NAME).freezes == "none" and TimmConfig(name=NAME, cache=True).freezes == "all"
    with pytest.raises(ValidationError, match="both name weights"):
        TimmConfig(name=NAME, pretrained="w.safetensors", cache=True)
    with pytest.raises(ValidationError, match="freeze needs pretrained weights"):
        TimmConfig(name=NAME, freeze="all")


def test_a_torchvision_model_from_torch_hubs_cache_folder(tmp_path):
    cfg = TorchvisionConfig(name="mobilenet_v3_small", weights="IMAGENET1K_V1", cache=str(tmp_path))
    spec = input_spec(cfg)  # torchvision's evaluation preset: resize 256, centre crop 224
    assert (spec.size, spec.crop_pct, spec.mean) == ((224, 224), 0.875, (0.485, 0.456, 0.406))
    with pytest.raises(TrainwrightError, match=r"not in torch hub's cache .*checkpoints/mobilenet_v3_small-047dcff4.pth"):
        start_from_pretrained(build(cfg, (3, 32, 32), 3), cfg)

    import torchvision

    torch.manual_seed(0)
    weights = torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict()
    (tmp_path / "checkpoints").mkdir()
    torch.save(weights, tmp_path / "checkpoints" / "mobilenet_v3_small-047dcff4.pth")  # as torch hub stores a download
    model = build(cfg, (3, 32, 32), 3)
    facts = start_from_pretrained(model, cfg)
    assert head_name(model) == "classifier.3" and model.state_dict()["classifier.3.weight"].shape == (3, 1024)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items() if not k.startswith("classifier.3."))
    assert facts["frozen_layers"] == facts["layers"] == 2  # features, and the classifier's first Linear
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
