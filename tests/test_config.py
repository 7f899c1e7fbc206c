import pytest

from trainwright.configure import apply_override, load_config, validate_config
from trainwright.errors import TrainwrightError


def test_minimal_config_fills_every_default():
    cfg = load_config({"data": {"source": "digits"}})
    assert cfg.model.type == "mlp"
    assert cfg.train.optimizer.name == "adam"
    assert cfg.data.split.train == pytest.approx(0.7)
    # The resolved config round-trips through YAML-able plain data.
    assert validate_config(cfg.to_dict()) == cfg


def test_overrides_parse_values_as_yaml():
    cfg = load_config(
        {"data": {"source": "iris"}}, ["train.optimizer.lr=0.01", "model.hidden=[128, 64]", "train.batch_size=full"]
    )
    assert cfg.train.optimizer.lr == 0.01
    assert cfg.model.hidden == [128, 64]
    assert cfg.train.batch_size == "full"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (
            {"data": {"source": "iris"}, "model": {"type": "nope"}},
            "unknown model type 'nope'; available: cnn, custom, gru, lstm, mlp, resnet, rnn, timm, torchvision, transformer",
        ),
        ({"data": {"source": "iris"}, "model": {"hiden": [3]}}, "unknown key 'model.hiden'"),
        ({"data": {"source": "iris"}, "train": {"optimizer": {"lr": -1}}}, "train.optimizer.lr = -1"),
        ({"data": {"source": "iris"}, "train": {"batch_size": "fulll"}}, "batch_size must be an integer >= 1"),
        ({"data": {"source": "iris"}, "train": {"batch_size": 0}}, "batch_size must be an integer >= 1"),
        ({"data": {"source": "iris", "split": {"train": 0.5, "val": 0.1, "test": 0.1}}}, "must be 1.0"),
        ({"data": {"source": "iris"}, "train": {"optimizer": {"name": "adam", "nesterov": True}}}, "nesterov needs"),
        ({"data": {"source": "iris"}, "train": {"device": "tpu"}}, "device must be"),
        ({"model": {"type": "mlp"}}, "data is required"),
    ],
)
def test_invalid_configs_name_the_key_and_what_is_allowed(raw, fragment):
    with pytest.raises(TrainwrightError, match="invalid config") as info:
        load_config(raw)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_builtin_defaults_apply_under_user_keys():
    assert load_config({"data": {"source": "linear"}}).model.hidden == []
    assert load_config({"data": {"source": "linear"}, "model": {"hidden": [4]}}).model.hidden == [4]


def test_bad_override_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(TrainwrightError, match="section.key=value"):
        apply_override({}, "epochs")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(TrainwrightError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(TrainwrightError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_the_readme_config_reference_lists_every_key():
    """Each key of the schema (every model family's too) appears as `key:` in the README's Config section."""
    import re
    import typing
    from pathlib import Path

    from pydantic import BaseModel

    from trainwright.config import Config, DistillConfig
    from trainwright.models.registry import MODELS

    def keys(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            alias = field.alias or name
            inner = [t for t in typing.get_args(field.annotation) or [field.annotation]
                     if isinstance(t, type) and issubclass(t, BaseModel)]
            out += keys(inner[0], f"{prefix}{alias}.") if inner and name != "model" else [f"{prefix}{alias}"]
        return out

    every = [key for key in keys(Config, "") if key != "model"] + keys(DistillConfig, "distill.")
    every += [key for spec in MODELS.values() for key in keys(spec.config, "model.")]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Config\n") : readme.index("\n## Python API\n")]
    # a key is named as `key:` (YAML) or `key ` in a family's comment line (`widths [32, 64, 128], convs 2`)
    missing = [key for key in every if not re.search(rf"\b{re.escape(key.split('.')[-1])}(:| \S)", section)]
    assert not missing, f"the README's config reference lacks {missing}"
