"""The estimate on its own: a supervised run's setup stage, timed, without training or writing anything.

Example:
    >>> est = estimate(load_config("examples/digits.yaml"), device="H100")
    >>> est.total_seconds, est.flops_per_step, est.memory.total
"""

from __future__ import annotations

import torch
from rich.console import Console
from torch import nn

from trainwright.cache import cache_dir
from trainwright.compute import Estimate, estimate_training
from trainwright.config import Config
from trainwright.data.prepare import prepare_data
from trainwright.recipes.setup import build_module, resolve_target, with_custom_model
from trainwright.training.precision import check_precision


def estimate(
    cfg: Config, *, model: nn.Module | None = None, device: str | None = None, console: Console | None = None
) -> Estimate:
    """How long ``cfg`` will train and how much memory it needs.

    ``device``: None (the config's ``train.device``), ``cpu``, ``cuda[:N]`` or ``mps`` (measured here), or a
    GPU name from the nominal table (``H100``, ``A100``, ``L4``, ...: its datasheet peak, efficiency assumed).
    """
    console = console or Console()
    cfg = with_custom_model(cfg, model)
    target = resolve_target(device or cfg.train.device)
    data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    module = build_module(cfg, data, model)
    if isinstance(target, torch.device):
        check_precision(target, cfg.train.precision)
    return estimate_training(cfg, data, module, target, peak_cache=cache_dir())
