"""The learning-rate finder: ``trainwright lr-find CONFIG``, and ``train.optimizer.lr: find`` in any run.

The recipe reads top to bottom: ① data and ② the model exactly as ``train`` would make them,
③ the range test (``training/lr_find.py``: an exponential sweep, the model and the random streams
restored afterwards), ④ ``lr_find.json`` and ``lr_find.png`` in a run directory of their own and
the suggestion printed with the rule that chose it, or the reason there is none.

``with_found_lr`` is the same sweep as a stage of another recipe: the supervised recipe calls it
when the config says ``lr: find`` and trains with the suggestion (a curve with none stops the run
with the reason before anything is written; nothing passes None on as a learning rate).

Example:
    >>> result = lr_find(load_config("examples/digits.yaml"))
    >>> result["suggestion"], result["rule"]
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from trainwright.config import Config
from trainwright.data.batches import make_batches
from trainwright.data.prepare import Prepared, prepare_data
from trainwright.errors import TrainwrightError
from trainwright.recipes.setup import build_module, has_batch_norm, resolve_device
from trainwright.report.lr_find import lr_find_png
from trainwright.rundir import RunDir, default_run_name, unique_name
from trainwright.training import transfer
from trainwright.training.loop import supervised_loss
from trainwright.training.losses import build_loss, resolve_loss
from trainwright.training.lr_find import LRSweep, lr_sweep
from trainwright.training.precision import autocast, check_precision


def lr_find(cfg: Config, *, runs_dir: str | Path = "runs", name: str | None = None, steps: int = 100, min_lr: float = 1e-7,
            max_lr: float = 10.0, console: Console | None = None) -> dict:
    """Sweep the learning rate for ``cfg``'s model and data; returns what ``lr_find.json`` holds (with ``dir``)."""
    console = console or Console()
    # ① Data and ② the model, as train makes them.
    data = prepare_data(cfg.data)
    for line in data.report_lines():
        console.print(line, highlight=False, soft_wrap=True)
    module = build_module(cfg, data)
    device = resolve_device(cfg.train.device)
    check_precision(device, cfg.train.precision)
    module = module.to(device)
    # ③ The sweep.
    sweep = sweep_lr(cfg, data, module, device, steps=steps, min_lr=min_lr, max_lr=max_lr)
    # ④ Its files and the answer.
    run_dir = RunDir.create(runs_dir, name or unique_name(runs_dir, default_run_name(data.name, f"{cfg.model.type}-lr-find")))
    run_dir.write_text(run_dir.config, cfg.to_yaml())
    result = write_sweep(run_dir, sweep)
    for line in sweep_lines(sweep):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"plot: {run_dir.path / 'lr_find.png'}", highlight=False, soft_wrap=True)
    run_dir.unlock()  # written: another process may open it
    return {**result, "dir": str(run_dir.path)}


def sweep_lr(cfg: Config, data: Prepared, module: nn.Module, device: torch.device, *, steps: int = 100,
             min_lr: float = 1e-7, max_lr: float = 10.0) -> LRSweep:
    """The range test on ``module`` (on ``device``) with the config's optimizer, batches, loss and precision."""
    tc = cfg.train
    if not 0 < min_lr < max_lr:
        raise TrainwrightError(f"the sweep needs 0 < --min-lr < --max-lr, got {min_lr:g} and {max_lr:g}")
    if steps < 30:
        raise TrainwrightError(f"--steps {steps} is too few for a curve; use 100 or more")
    batches = make_batches(data.x_train, data.y_train, tc.batch_size, device, tc.data_placement, tc.loader_workers,
                           drop_singleton=has_batch_norm(module), transform=data.train_transform)
    unit = cfg.model_copy(update={"train": tc.model_copy(update={"optimizer": tc.optimizer.model_copy(update={"lr": 1.0})})})
    return lr_sweep(
        module, batches, supervised_loss(module, build_loss(resolve_loss(data.task, tc.loss))), unit.train.optimizer,
        generator=torch.Generator(device=device).manual_seed(tc.seed),  # its own stream: the run's shuffle is untouched
        params=transfer.parameter_groups(module, unit), l1=tc.l1, l2=tc.l2, amp=autocast(device, tc.precision),
        min_lr=min_lr, max_lr=max_lr, steps=steps,
    )


def with_found_lr(cfg: Config, data: Prepared, module: nn.Module, device: torch.device,
                  console: Console) -> tuple[Config, LRSweep | None]:
    """``cfg`` with ``train.optimizer.lr: find`` replaced by the sweep's suggestion (and the sweep); else as it is."""
    if cfg.train.optimizer.lr != "find":
        return cfg, None
    sweep = sweep_lr(cfg, data, module.to(device), device)
    if sweep.suggestion is None:
        raise TrainwrightError(f"train.optimizer.lr: find found no learning rate: {sweep.reason}; "
                               "set train.optimizer.lr to a number (e.g. 0.001)")
    console.print(f"lr-find: train.optimizer.lr = {sweep.suggestion:.3g} ({sweep.rule}; sweep "
                  f"{sweep.lrs[0]:.0e} to {sweep.lrs[-1]:.2g} over {len(sweep.lrs)} steps)", highlight=False, soft_wrap=True)
    tc = cfg.train
    optimizer = tc.optimizer.model_copy(update={"lr": float(f"{sweep.suggestion:.3g}")})
    return cfg.model_copy(update={"train": tc.model_copy(update={"optimizer": optimizer})}), sweep


def write_sweep(run_dir: RunDir, sweep: LRSweep) -> dict:
    """``lr_find.json`` (every point, the suggestion and its rule or the reason for none) and ``lr_find.png``."""
    result = sweep.to_dict()
    run_dir.write_json(run_dir.path / "lr_find.json", result)
    run_dir.write_bytes(run_dir.path / "lr_find.png", lr_find_png(result))
    return result


def sweep_lines(sweep: LRSweep) -> list[str]:
    lines = [f"sweep: {len(sweep.lrs)} steps from lr {sweep.lrs[0]:.1e} to {sweep.lrs[-1]:.3g}; stopped: {sweep.stopped}"
             if sweep.lrs else f"sweep: no finite loss; stopped: {sweep.stopped}"]
    if sweep.suggestion is None:
        lines.append(f"no suggestion: {sweep.reason}")
    else:
        lines.append(f"suggestion: train.optimizer.lr = {sweep.suggestion:.3g}")
        lines.append(f"rule: {sweep.rule}")
    return lines
