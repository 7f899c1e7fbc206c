import pytest
from pydantic import ValidationError

from trainwright.config.gan import GANConfig
from trainwright.configure import validate_gan_config


def test_defaults_are_the_benchmarked_settings():
    cfg = GANConfig()
    assert (cfg.loss, cfg.lr_g, cfg.lr_d, cfg.betas, cfg.d_steps) == ("non_saturating", 2e-4, 2e-4, (0.5, 0.999), 1)
    assert cfg.r1 > 0 and cfg.ema == 0.99 and cfg.lr_decay == "linear" and cfg.latent_size == "auto"
    assert cfg.sample.n == 64 and cfg.evaluate.n_samples == 2500


def test_unknown_keys_and_bad_values_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        GANConfig(lr=1e-3)
    with pytest.raises(ValidationError):
        GANConfig(loss="minimax")
    with pytest.raises(ValidationError, match="betas"):
        GANConfig(betas=(0.5, 1.0))
    with pytest.raises(ValidationError, match="hidden widths"):
        GANConfig(g_hidden=[])
    with pytest.raises(ValidationError, match="batch_norm_d"):
        GANConfig(batch_norm_d=True, loss="wgan_gp")


def test_frozen_and_parsed_from_yaml_like_dicts():
    cfg = GANConfig.model_validate({"loss": "hinge", "ema": None, "betas": [0.0, 0.9], "evaluate": {"every_steps": 100}})
    assert cfg.ema is None and cfg.betas == (0.0, 0.9) and cfg.evaluate.every_steps == 100
    with pytest.raises(ValidationError):
        cfg.loss = "wgan_gp"


def test_builtin_sets_gan_defaults_grid_rejection_and_unconditional_digits_packing():
    grid = validate_gan_config({"recipe": "gan", "data": {"source": "grid"}})
    assert grid.gan.mlp_init == "torch" and grid.gan.sample.rejection and grid.train.batch_size == 256
    assert grid.train.steps == 100_000  # the steps benchmarks/gan_quality.py measured the grid with
    ring = validate_gan_config({"recipe": "gan", "data": {"source": "ring"}})
    assert ring.gan.mlp_init == "dcgan" and not ring.gan.sample.rejection and ring.train.steps == 10_000
    digits = validate_gan_config({"recipe": "gan", "data": {"source": "digits-images"}})
    assert digits.gan.pack == 2 and digits.gan.evaluate.every_steps == 250  # unconditional: packs of 2
    conditional = validate_gan_config({"recipe": "gan", "data": {"source": "digits-images"}, "gan": {"conditional": True}})
    assert conditional.gan.pack == 1 and conditional.gan.evaluate.every_steps == 500
    mine = validate_gan_config({"recipe": "gan", "data": {"source": "digits-images"}, "gan": {"pack": 1}})
    assert mine.gan.pack == 1  # the user's keys win
