"""What ``--resume`` may change, and how a resumed run is put back, told and recorded.

A resume continues a run from its checkpoint with the run's own config. ``--set`` may change the
keys in ``RESUMABLE``: how long to train, the learning rate (the optimizer's saved state would
otherwise win), early stopping's patience, the checkpoint interval, where it trains and evaluates.
Anything else (the data, the model, the batch size, the optimizer's kind, the seed) would make
the checkpoint describe another run, so it is refused in one line before anything is loaded.
The changes are applied, written into ``config.yaml`` and noted in ``resumes.json``.

Example:
    >>> changes = resume_changes(load_config(run_dir.config), cfg)   # {"train.optimizer.lr": (0.01, 0.001)}
    >>> apply_changes(fit, changes)
"""

from __future__ import annotations

import time
from typing import Any

from trainwright.config import Config
from trainwright.config.base import flat
from trainwright.errors import TrainwrightError
from trainwright.rundir import RunDir
from trainwright.training.loop import Fit

RESUMABLE = (
    "train.epochs",
    "train.optimizer.lr",
    "train.early_stopping.patience",
    "train.checkpoint_every",
    "train.clip_grad_norm",
    "train.device",
    "train.data_placement",
    "train.loader_workers",
    "evaluate.batch_size",
    "evaluate.baseline",
)
# Schedules whose shape is fitted to train.epochs: a longer run would fall off their end.
EPOCH_SHAPED = ("cosine", "one_cycle")


def resume_changes(saved: Config, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """The keys ``cfg`` changes from the run's ``saved`` config, ``{key: (old, new)}``; a key a
    resume may not change is a TrainwrightError naming it and the keys it may change."""
    old, new = flat(saved.to_dict()), flat(cfg.to_dict())
    changes = {key: (old.get(key), new.get(key)) for key in dict.fromkeys([*old, *new]) if old.get(key) != new.get(key)}
    refused = [key for key in changes if key not in RESUMABLE]
    if refused:
        raise TrainwrightError(
            f"--resume cannot change {', '.join(refused)}: the checkpoint was trained with the run's own value; a resume "
            f"may change {', '.join(RESUMABLE)} (start a new run to change anything else)"
        )
    if "train.epochs" in changes and cfg.train.schedule.name in EPOCH_SHAPED:
        raise TrainwrightError(
            f"--resume cannot change train.epochs of a run with schedule {cfg.train.schedule.name}: its shape is fitted to "
            f"the {saved.train.epochs} epochs it was started with; start a new run to train longer"
        )
    return changes


def apply_changes(run: Fit, changes: dict[str, tuple[Any, Any]]) -> None:
    """What the loaded state would undo: a new learning rate (every group and the schedule scaled by
    new/old), and a longer patience that lets an early-stopped run go on."""
    if "train.optimizer.lr" in changes:
        old, new = changes["train.optimizer.lr"]
        run.schedule.scale_lr(new / old)
    if run.stop_reason and run.stop_reason.startswith("early stopping") and "train.early_stopping.patience" in changes:
        run.stop_reason = None  # early stopping decides again at the end of the next epoch, with the new patience


def record_resume(run_dir: RunDir, cfg: Config, where: str, changes: dict[str, tuple[Any, Any]]) -> None:
    """``config.yaml`` becomes the config the run now trains with; ``resumes.json`` notes when, from where, what changed."""
    if changes:
        run_dir.write_text(run_dir.config, cfg.to_yaml())
    notes = run_dir.read_json(run_dir.resumes) if run_dir.resumes.is_file() else []
    notes = notes if isinstance(notes, list) else []
    notes.append(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "from": where, "changed": {k: list(v) for k, v in changes.items()}}
    )
    run_dir.write_json(run_dir.resumes, notes)


def changes_text(changes: dict[str, tuple[Any, Any]]) -> str:
    """'train.optimizer.lr 0.01 -> 0.001, train.epochs 40 -> 60'."""
    return ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changes.items())
