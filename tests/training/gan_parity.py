"""Train small GANs through the recipe (setup, loop, finish) on however many processes started this one.

``tests/training/test_distributed.py`` runs it under torchrun with 2 processes (gloo, loopback) and
calls ``gan_weights`` in its own process with 1, then compares the final weights of both networks and
the generator's moving average.

    python -m torch.distributed.run --nproc-per-node 2 tests/training/gan_parity.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from trainwright.configure import validate_gan_config
from trainwright.recipes.gan import WEIGHTS, train_gan
from trainwright.training.distributed import world_size

# A table whose class the generator makes too (a one-hot block: straight-through Gumbel noise, drawn for the global
# batch), WGAN-GP (random interpolation points) with R1 (gradients with respect to the real samples), packs of 2 in
# batches of 26: shares of 6 and 7 packs; 2 discriminator steps per generator step. No batch norm in the generator (it
# would normalize each process's share, not the global batch). One case: the recipe joins the processes and leaves them.
CONFIG = {"recipe": "gan", "data": {"source": "iris"}, "train": {"steps": 20, "batch_size": 26, "seed": 5},
          "gan": {"g_hidden": [16, 16], "d_hidden": [16], "g_norm": "layer", "loss": "wgan_gp", "r1": 0.1, "pack": 2,
                  "d_steps": 2, "evaluate": {"every_steps": 10, "n_samples": 100}}}


def gan_weights(runs_dir: Path) -> dict[str, torch.Tensor]:
    """The final weights: ``generator.*``, ``discriminator.*``, ``generator_ema.*`` (rank 0's files; {} elsewhere)."""
    run = train_gan(validate_gan_config(CONFIG), runs_dir=runs_dir, name=f"gan-{world_size()}", console=Console(quiet=True))
    if not run.metrics:  # not rank 0: it wrote nothing
        return {}
    return {f"{key}.{k}": v for key, file in WEIGHTS.items() for k, v in load_file(str(run.dir / file)).items()}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    weights = gan_weights(out / "runs")
    if weights:
        save_file(weights, str(out / "gan.safetensors"))
