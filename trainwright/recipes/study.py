"""What a hyperparameter study stands on: its storage, its search space, and its trial budget.

- **Storage** (``open_study``): a SQLite file in the study's directory by default (nothing to
  install); more than one worker on SQLite is refused (SQLite locks the whole file on each write:
  Optuna's FAQ advises against it for parallel workers, optuna#820); ``--workers N`` on one machine
  uses Optuna's journal file in the study's directory; ``--storage postgresql://...`` lets any
  number of workers on any number of machines join one study (each runs the same command).
- **Dead workers**: on a database (SQLite, PostgreSQL) a running trial writes a heartbeat; one
  silent for ``tune.grace_seconds`` is failed by the next worker that looks and retried by
  ``RetryHeartbeatStaleTrialCallback`` (Optuna 4's RetryFailedTrialCallback, renamed), at most
  ``tune.max_retry`` times. Optuna 5's journal storage has
  no heartbeat, so there a trial records its host and process id, and a trial whose process on
  this machine is gone is failed and retried the same way.
- **Budget**: ``--trials N`` is the study's total of finished (complete or pruned) trials, over
  all workers and sessions, so the same command resumes a study or joins it from another machine.
  A trial may start only while fewer than N trials numbered before it are finished or running;
  two workers asking for the last slot at once both get a trial, and the later one gives it back
  (it is recorded as failed with ``excess`` set, and trains nothing).
- **Space** (``check_space``, ``suggest``): each key must be a key of the resolved config and each
  value (every choice, both ends of a range) must give a valid config, checked before any trial;
  a study remembers its space, and resuming it with another is refused.

Example:
    >>> study, where = open_study(cfg, Path("runs/digits-tune"), storage=None, workers=1, direction="maximize")
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from trainwright.config import Config, Dimension
from trainwright.configure import validate_config
from trainwright.errors import TrainwrightError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HOST = socket.gethostname()


class ExcessTrial(Exception):
    """A trial asked for after the budget was taken by trials numbered before it."""


# ── the search space ─────────────────────────────────────────────────────────────────────
def check_space(cfg: Config) -> None:
    """Every key of ``tune.space`` names a config key, and every value it can take gives a valid config."""
    resolved = without_tune(cfg.to_dict())
    for key, dimension in cfg.tune.space.items():
        if key.startswith(("tune.", "data.source")) or not has_key(resolved, key):
            raise TrainwrightError(
                f"tune.space key {key!r} is not a key of this config (keys look like train.optimizer.lr or model.hidden, "
                "as --set writes them; data.source and tune keys cannot be searched)"
            )
        for value in dimension.values_to_check():
            try:
                validate_config(with_value(resolved, key, value))
            except TrainwrightError as error:
                detail = str(error).removeprefix("invalid config: ")
                raise TrainwrightError(f"tune.space {key}: the value {value!r} does not fit: {detail}") from None


def has_key(tree: dict, key: str) -> bool:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def with_value(tree: dict, key: str, value: Any) -> dict:
    """A copy of the plain config ``tree`` with the dotted ``key`` set to ``value``."""
    tree = copy.deepcopy(tree)
    node = tree
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return tree


def without_tune(tree: dict) -> dict:
    return {k: v for k, v in tree.items() if k != "tune"}


def suggest(trial: optuna.Trial, space: dict[str, Dimension]) -> dict[str, Any]:
    """The trial's value for each key (choices travel as JSON text: Optuna's categories are scalars)."""
    values = {}
    for key, d in space.items():
        if d.log_uniform is not None:
            values[key] = trial.suggest_float(key, *d.log_uniform, log=True)
        elif d.uniform is not None:
            values[key] = trial.suggest_float(key, *d.uniform)
        elif d.integer is not None:
            values[key] = trial.suggest_int(key, *d.integer)
        else:
            values[key] = json.loads(trial.suggest_categorical(key, [json.dumps(c) for c in d.choice]))
    return values


def config_params(cfg: Config) -> dict[str, Any] | None:
    """The config's own values as trial parameters, when each lies in the space (else None)."""
    resolved, params = cfg.to_dict(), {}
    for key, d in cfg.tune.space.items():
        node: Any = resolved
        for part in key.split("."):
            node = node[part]
        if d.choice is not None:
            if node not in d.choice:
                return None
            params[key] = json.dumps(node)
        else:
            low, high = d.log_uniform or d.uniform or d.integer
            if isinstance(node, bool) or not isinstance(node, (int, float)) or not low <= node <= high:
                return None
            params[key] = node
    return params


def space_signature(cfg: Config) -> str:
    return json.dumps({key: d.model_dump(mode="json") for key, d in cfg.tune.space.items()}, sort_keys=True)


# ── storage ──────────────────────────────────────────────────────────────────────────────
def open_study(cfg: Config, study_dir: Path, *, storage: str | None, workers: int, direction: str, metric: str,
               seed: int) -> tuple[optuna.Study, str]:
    """Create or load the study named after ``study_dir``; returns it and a description of where it lives."""
    tune = cfg.tune
    name = study_dir.name
    url = storage
    if url is None:
        db, journal = study_dir / "study.db", study_dir / "study.journal"
        if workers > 1 and db.exists():
            raise TrainwrightError(refuse_sqlite(workers, f"the study {name} lives in the SQLite file {db}"))
        url = f"journal:{journal}" if workers > 1 or journal.exists() else f"sqlite:///{db}"
    elif url.startswith("sqlite") and workers > 1:
        raise TrainwrightError(refuse_sqlite(workers, f"--storage {url} is a SQLite file"))
    backend = make_storage(url, tune)
    try:
        study = optuna.create_study(
            study_name=name, storage=backend, direction=direction, load_if_exists=True,
            # constant_liar: a worker's suggestions steer clear of the trials other workers are running.
            sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True), pruner=make_pruner(tune.pruner, cfg.train.epochs),
        )
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and drivers raise many kinds
        raise TrainwrightError(f"cannot open the study in {masked(url)}: {one_line(error)}; check the URL, that the "
                               "server is running and reachable, and the user's rights") from None
    signature = space_signature(cfg)
    saved = study.user_attrs.get("space")
    if saved is None:
        study.set_user_attr("space", signature)
        study.set_user_attr("metric", metric)
    elif saved != signature:
        raise TrainwrightError(
            f"the study {name} in {masked(url)} was created with another search space ({', '.join(json.loads(saved))}); "
            "resume it with that tune.space, or start a new study with --name"
        )
    elif study.user_attrs.get("metric") != metric:
        raise TrainwrightError(f"the study {name} optimizes {study.user_attrs.get('metric')}, not {metric}; "
                               "set tune.metric to that, or start a new study with --name")
    return study, masked(url)


def make_storage(url: str, tune) -> optuna.storages.BaseStorage:
    retry = retry_callback(tune.max_retry)
    if url.startswith("journal:"):
        path = url.removeprefix("journal:")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")  # SQLAlchemy's default driver is psycopg2
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=tune.heartbeat_seconds, grace_period=tune.grace_seconds, heartbeat_stale_trial_callback=retry,
            engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
        )
    except ImportError as error:
        raise TrainwrightError(f"--storage {masked(url)} needs a database driver that is not installed ({error}); "
                               "pip install 'trainwright[tune]' installs psycopg for PostgreSQL") from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and drivers raise many kinds
        raise TrainwrightError(f"cannot reach the study storage {masked(url)}: {one_line(error)}; check the URL, that "
                               "the server is running and reachable, and the user's rights") from None


def retry_callback(max_retry: int) -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """A failed stale trial comes back as a waiting copy with the same parameters (Optuna marks it experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def refuse_sqlite(workers: int, what: str) -> str:
    return (f"{what}, which cannot take {workers} workers (SQLite locks the whole file on every write); use --workers "
            "without --storage for a new study (a journal file, one machine) or --storage postgresql://USER@HOST/DB "
            "(any number of machines)")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        # The first 5 trials run whole; no trial is judged on its first 5 epochs.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def masked(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _at, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
    return url


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


# ── the budget and dead workers ──────────────────────────────────────────────────────────
def claim(study: optuna.Study, trial: optuna.Trial, total: int) -> None:
    """Raise ``ExcessTrial`` when ``total`` trials numbered before this one are finished or running."""
    before = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and t.state != TrialState.FAIL]
    if len(before) >= total:
        trial.set_user_attr("excess", True)
        raise ExcessTrial(f"trial {trial.number}: the study's {total} trials were taken by other workers")
    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())


def fail_dead_trials(study: optuna.Study, max_retry: int) -> list[int]:
    """Fail (and retry) the running trials whose worker is gone: by heartbeat on a database, by process id on
    this machine for the journal file. Returns the numbers of the trials found dead (on a database, those failed
    during the call, here or by another worker).

    Several workers may find the same dead trial at once; only the one whose FAIL the storage takes (a row lock on a
    database, the log's order on the journal) enqueues its retry, so a dead trial is retried once, not once per worker.
    """
    storage = study._storage
    # Not isinstance(storage, RDBStorage): a study holds its database's storage wrapped in Optuna's cache.
    if not isinstance(storage, optuna.storages.JournalStorage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # fails each stale trial under a row lock; the winner retries it
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        return sorted(before - after - {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)})
    failed = []
    retry = retry_callback(max_retry)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == HOST and pid is not None and not alive(pid) and fail_first(storage, t):
            retry(study, copy.deepcopy(storage.get_trial(t._trial_id)))  # as Optuna does: the callback extends lists in it
            failed.append(t.number)
    return failed


def fail_first(storage: optuna.storages.BaseStorage, trial: optuna.trial.FrozenTrial) -> bool:
    """Fail ``trial`` unless another worker finished it first; True only for the worker whose FAIL took.
    (``study.tell(..., skip_if_finished=True)`` cannot tell the two apart: it returns quietly either way.)"""
    try:
        return storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def counts(study: optuna.Study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    return {
        "finished": sum(t.state in FINISHED for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "waiting": sum(t.state == TrialState.WAITING for t in trials),
        "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get("excess") for t in trials),
    }


def wait_for_others(seconds: float) -> None:
    time.sleep(seconds)
