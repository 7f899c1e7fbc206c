"""The estimate on its own: a supervised run's setup stage, timed, without training or writing anything.

Example:
    >>> est = estimate(load_config("examples/digits.yaml"), device="H100")
    >>> est.total_seconds, est.flops_per_step, est.memory.total
"""

from __future__ import annotations

from dataclasses import replace

import torch
from rich.console import Console
from torch import nn

from trainwright.cache import cache_dir
from trainwright.compute import Estimate, estimate_training
from trainwright.compute.estimate import estimate_data_parallel
from trainwright.config import Config
from trainwright.data.prepare import prepare_data
from trainwright.recipes.setup import build_module, resolve_target, with_custom_model
from trainwright.training.precision import check_precision


def estimate(
    cfg: Config, *, model: nn.Module | None = None, device: str | None = None, console: Console | None = None,
    processes: int = 1, machines: int = 1,
) -> Estimate:
    """How long ``cfg`` will train and how much memory it needs.

    ``device``: None (the config's ``train.device``), ``cpu``, ``cuda[:N]`` or ``mps`` (measured here), or a
    GPU name from the nominal table (``H100``, ``A100``, ``L4``, ...: its datasheet peak, efficiency assumed).
    ``processes`` (per machine) x ``machines`` > 1: data-parallel too, its all-reduce included (``est.parallel``).
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
    if cfg.train.optimizer.lr == "find":  # the time of a step does not depend on the learning rate
        tc = cfg.train
        cfg = cfg.model_copy(update={"train": tc.model_copy(update={"optimizer": tc.optimizer.model_copy(update={"lr": 1e-3})})})
    est = estimate_training(cfg, data, module, target, peak_cache=cache_dir())
    if processes * machines > 1:
        est = replace(est, parallel=estimate_data_parallel(cfg, data, module, target, est, processes, machines))
    return est
