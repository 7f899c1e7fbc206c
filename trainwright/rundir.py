"""The run directory: its layout, and the only writer of a run's files.

```
runs/<name>/
├── config.yaml            resolved config (every default filled in)
├── environment.json       versions, device, seed: what is needed to repeat the run
├── data.json              data summary: columns, cleaning actions with counts, split sizes
├── preprocessor.skops     fitted scikit-learn preprocessing (skops: loads no arbitrary code); tables only
├── preprocessor.json      its plain facts: target, task, classes, columns (images: mode, size, mean, std;
│                          series: columns, window, scaler mean and std)
├── tokenizer.json         text only: the trained tokenizer, in the tokenizers library's JSON format
├── model.safetensors      the trained (best) weights
├── model.json             architecture facts: family, input and output widths, parameters
├── history.csv            one row per epoch
├── gradients.json         per epoch: gradient norm per layer, share of dead ReLU units
├── metrics.json           test/validation/training metrics, baselines, best epoch, epochs, seconds
├── misclassified.png      images only: a grid of the misclassified test images
├── examples.png           images only: a few training images per class, before and after augmentation
├── predictions_test.csv   the test rows' true values, predictions and class probabilities
├── env.json, episode.gif  rl only: the environment's facts; one episode of the kept policy (seeds.json with --seeds)
├── diagnosis.json         what went wrong in training: findings with evidence and remedies
├── report.html            the HTML report of all of the above
├── resumes.json           each --resume: when, from where, which settings it changed
├── manifest.json          the sha256 and size of every file above, as written
├── .lock                  held (flock) by the process writing the run; holds its process id
└── checkpoints/last.safetensors   everything needed to resume
```

**Writing.** Every file of a run is written through a ``RunDir`` method, atomically (a reader sees
the old file or the new one, never half of either), with the mode a plain ``open`` gives (the
umask is honoured), and only by the process that writes: under torch.distributed that is rank 0,
in a single process always. Other ranks' writes are no-ops, so code that writes need not know
about ranks. Later stages (predict, evaluate, report) read only this directory, so they work on
yesterday's runs.

**The lock.** A process writing a run holds an exclusive ``flock`` on its ``.lock`` file: ``train``
from creating the directory to the report, ``--resume`` from opening it, other commands (``report``,
``calibrate``) for each write. A second writer gets one line naming the holder's process id. The
kernel drops a lock when its holder dies, however it dies, so a lock left by a killed process is
simply taken over; the process id in the file only serves the message.

**The manifest.** ``manifest.json`` holds the sha256 and size of every file written here. A write
records the new checksum beside the old one before its rename and drops the old one after, so a
kill at any moment leaves every file matching its entry. ``verify`` checks files against it, so
predict, evaluate, report and ``--resume`` name a truncated or changed file as damaged instead of
reading it.

**Write errors.** A full disk, a file size limit or any other failed write is one ``WriteFailed``
line: the file, the space it needed and what was free, what is kept (the previous version of the
file and every other file). Its temporary file is removed, and the temporary files a killed
process left behind (``.*.tmp``) are removed when the run is opened for ``--resume``.

Example:
    >>> run = RunDir.create("runs", "digits-mlp")
    >>> run.write_json(run.metrics, {"test": {"accuracy": 0.98}})
    >>> run.read_json(run.metrics)["test"]["accuracy"]
    0.98
    >>> run.verify(run.metrics)          # raises TrainwrightError if the file was changed since
    >>> run.unlock()
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save, save_file
from torch import distributed

from trainwright.errors import RunLocked, TrainwrightError, WriteFailed
from trainwright.files import TMP_SUFFIX, atomic_path, atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are written without a lock
    fcntl = None

# The run directories this process holds the lock of: resolved path -> the lock file's descriptor.
_LOCKS: dict[str, int] = {}
# Writes handed to the writer thread (``RunDir.in_background``), by resolved path, not yet settled; one
# thread writes them in order, and every write of the process goes through one lock, so the manifest's
# read-modify-write never interleaves. A non-daemon thread: the interpreter waits for it at exit.
_PENDING: dict[str, list[Future]] = {}
_WRITE_LOCK = threading.RLock()
_WRITER: ThreadPoolExecutor | None = None


def _forked() -> None:
    """A forked child has no writer thread (only the forking thread is copied) and may hold a copy of a
    lock the thread held: it starts its own, and its parent's pending writes are the parent's."""
    global _WRITER, _WRITE_LOCK
    _WRITER, _WRITE_LOCK = None, threading.RLock()
    _PENDING.clear()


os.register_at_fork(after_in_child=_forked)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_IN_MEMORY = 256 * 2**20  # safetensors files up to this size are serialized in memory, then written


def is_writer() -> bool:
    """Whether this process writes run files: rank 0 under torch.distributed, else always."""
    return not (distributed.is_available() and distributed.is_initialized()) or distributed.get_rank() == 0


class RunDir:
    """Paths inside one run directory, and the methods that write them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.environment = self.path / "environment.json"
        self.data = self.path / "data.json"
        self.weights = self.path / "model.safetensors"
        self.model_info = self.path / "model.json"
        self.history = self.path / "history.csv"
        self.metrics = self.path / "metrics.json"
        self.gradients = self.path / "gradients.json"
        self.predictions = self.path / "predictions_test.csv"
        self.diagnosis = self.path / "diagnosis.json"
        self.report = self.path / "report.html"
        self.misclassified = self.path / "misclassified.png"  # images only
        self.examples = self.path / "examples.png"  # images only
        self.resumes = self.path / "resumes.json"
        self.manifest = self.path / "manifest.json"
        self.lock_file = self.path / ".lock"
        self.checkpoint = self.path / "checkpoints" / "last.safetensors"
        self.env_info = self.path / "env.json"  # rl only: the environment's id, spaces, solved level
        self.episode = self.path / "episode.gif"  # rl only: one episode of the kept policy
        self.seeds = self.path / "seeds.json"  # rl only, with --seeds: every seed's final return and the IQM
        # A recipe that ends in ``finish`` (which settles them) sets this: the writes training hands to
        # ``in_background`` then run on the writer thread; otherwise (a loop driven by hand) at once.
        self.defer = False

    @property
    def start_files(self) -> list[Path]:
        """What a run is started from and never rewrites: what ``--resume`` checks before it goes on."""
        names = ("preprocessor.json", "preprocessor.skops", "tokenizer.json")
        return [self.config, self.environment, self.data, self.model_info, *(self.path / n for n in names), self.checkpoint]

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """Make a new, empty run directory and lock it; never reuse or overwrite an existing run."""
        if not re.fullmatch(r"[\w.\-]+", name) or name in (".", ".."):
            raise TrainwrightError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
        run = cls(Path(runs_dir) / name)
        if not is_writer():
            return run
        exists = f"{run.path} already exists; choose another --name, or continue it with --resume {run.path}"
        try:
            run.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            if not run._empty_leftover():
                raise TrainwrightError(exists) from None
        except OSError as error:
            raise TrainwrightError(f"cannot create the run directory {run.path}: {error.strerror}") from None
        run.lock()
        if run.config.exists():  # another process took this empty leftover first
            run.unlock()
            raise TrainwrightError(exists)
        run.remove_leftovers()
        (run.path / "checkpoints").mkdir(exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory, to read; anything else is a clear error."""
        run = cls(path)
        if not run.path.is_dir():
            raise TrainwrightError(
                f"run directory {run.path} does not exist; `trainwright train` prints the run directory as its last line"
            )
        if not run.config.is_file():
            raise TrainwrightError(f"{run.path} is not a trainwright run directory (it has no config.yaml)")
        return run

    @classmethod
    def resume(cls, path: str | Path) -> RunDir:
        """An existing run opened to go on writing it: locked, the temporary files a killed process
        left removed, and the files it was started from checked against the manifest."""
        run = cls.open(path)
        run.lock()
        try:
            run.remove_leftovers()
            run.verify(*run.start_files, fix="the run cannot be resumed; start it again under a new --name")
        except BaseException:
            run.unlock()
            raise
        return run

    def _empty_leftover(self) -> bool:
        """What a run killed while its directory was being made leaves: no config.yaml, and nothing
        but an empty checkpoints/, the lock file and temporary files."""
        try:
            entries = list(self.path.iterdir())
            checkpoints = self.path / "checkpoints"
            return all(
                e == self.lock_file or e.name.endswith(TMP_SUFFIX) or (e == checkpoints and not any(e.iterdir()))
                for e in entries
            )
        except OSError:
            return False

    def remove_leftovers(self) -> list[Path]:
        """Delete the temporary files (``.<name>.<random>.tmp``) a killed writer left; call with the lock held."""
        removed: list[Path] = []
        if not self.writes:  # under torch.distributed rank 0's own temporary files may be among them
            return removed
        for folder in (self.path, self.path / "checkpoints"):
            for tmp in folder.glob(f".*{TMP_SUFFIX}"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
        return removed

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (see ``is_writer``)."""
        return is_writer()

    # ── the lock ─────────────────────────────────────────────────────────────────────────
    def _key(self) -> str:
        return str(self.path.resolve())

    @property
    def locked(self) -> bool:
        """Whether this process holds the run's lock."""
        return self._key() in _LOCKS

    def lock(self, wait: float = 0.0) -> None:
        """Hold the run's lock until ``unlock`` (or the process ends); another holder is a RunLocked error
        (after waiting up to ``wait`` seconds for it to let go: processes that share a directory briefly)."""
        if not self.writes or fcntl is None or self.locked:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise self._write_failed(self.lock_file, error) from None
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").split()
            os.close(fd)
            who = f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "another process"
            stop = f" (kill {holder[0]})" if holder else ""
            raise RunLocked(
                f"{self.path} is being written by {who}; wait for it to finish, or stop it{stop} and then resume the run"
            ) from None
        except OSError:  # a file system without locks (some network mounts): go on without one
            os.close(fd)
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        _LOCKS[self._key()] = fd

    def unlock(self) -> None:
        """Let the lock go (the file stays: removing it would race with the next holder), once the writes
        handed to the writer thread are done (a failed one is raised here, unless an earlier call raised it)."""
        try:
            self.settle()
        finally:
            self._release()

    def _release(self) -> None:
        fd = _LOCKS.pop(self._key(), None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    def holder(self) -> str | None:
        """The process id in the lock file when another process holds the lock, else None."""
        if fcntl is None or self.locked or not self.lock_file.is_file():
            return None
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            words = os.read(fd, 200).decode("utf-8", "replace").split()
            return words[0] if words else "unknown"
        except OSError:
            return None
        finally:
            os.close(fd)  # also lets go of a shared lock just taken
        return None

    @contextlib.contextmanager
    def writing(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the lock for a few reads and writes (unless this process holds it already), so no
        other process writes the run in between (``wait``: see ``lock``)."""
        held = self.locked
        if not held:
            self.lock(wait)
        try:
            yield
        finally:
            if not held:
                self.unlock()

    # ── writing: every file of a run goes through one of these ─────────────────────────
    def write_text(self, path: Path | str, text: str) -> None:
        self._write(path, text.encode("utf-8"))

    def write_bytes(self, path: Path | str, data: bytes) -> None:
        self._write(path, data)

    def write_json(self, path: Path | str, data: Any) -> None:
        """Strict JSON: NaN (an undefined metric) is written as null."""
        self.write_text(path, json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False) + "\n")

    def write_files(self, files: dict[str, str | bytes]) -> None:
        """Several files by name (a preprocessor's ``files()``), each atomically."""
        for name, content in files.items():
            (self.write_text if isinstance(content, str) else self.write_bytes)(name, content)

    def write_tensors(self, path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
        """A safetensors file: the tensors must be on the CPU, contiguous and share no storage."""
        size = sum(t.numel() * t.element_size() for t in tensors.values()) + sum(map(len, (metadata or {}).values()))
        if size <= _IN_MEMORY:  # serialized in memory: the file write and its checksum then let other threads run
            self._write(path, save(tensors, metadata=metadata))
        else:  # a large state is streamed to the file, not held twice in memory
            self.write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), size=size)

    def write_with(self, path: Path | str, write: Callable[[Path], None], size: int | None = None) -> None:
        """``write(tmp)`` fills a temporary file beside ``path``, which then replaces ``path`` in one rename
        (``size``: about how many bytes it writes, for the message if the disk is full)."""
        self._write(path, write, size)

    def in_background(self, write: Callable[[], None]) -> None:
        """Run ``write`` (a function that writes files of this run through its methods) on the writer thread
        when ``defer`` is set (else now), after the writes handed over before it: training ends while its
        last files are written, and they overlap the evaluation that follows. Any later write or read through
        this class, ``settle`` and ``unlock`` wait for them first and raise the error of one that failed (a
        full disk: WriteFailed)."""
        global _WRITER
        if not self.writes:
            return
        if not self.defer:
            write()
            return
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainwright-writer")
        _PENDING.setdefault(self._key(), []).append(_WRITER.submit(write))

    def settle(self) -> None:
        """Wait for the writes handed to the writer thread; raise the first error among them."""
        if not _PENDING or threading.current_thread().name.startswith("trainwright-writer"):
            return  # the writer thread's own writes are in order already
        pending = _PENDING.pop(self._key(), [])
        errors = [error for future in pending if (error := future.exception()) is not None]
        if errors:
            raise errors[0]

    def _write(self, path: Path | str, content: bytes | Callable[[Path], None], size: int | None = None) -> None:
        if not self.writes:
            return
        self.settle()  # files handed to the writer thread come first, in the order they were written
        full = self._inside(path)
        name = self._name(full)
        size = len(content) if isinstance(content, bytes) else size
        with _WRITE_LOCK, self.writing():
            try:
                with atomic_path(full) as tmp:
                    if isinstance(content, bytes):
                        tmp.write_bytes(content)
                        entry = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
                    else:
                        content(tmp)
                        entry = _checksum(tmp)
                    self._record(name, entry, replacing=True)  # both versions are valid until the rename
                self._record(name, entry)
            except (OSError, SafetensorError) as error:
                raise self._write_failed(full, error, size) from None

    def save_weights(self, weights: torch.nn.Module | dict[str, torch.Tensor], path: Path | str | None = None) -> None:
        """A module's weights (or a state dict of them) as ``path``, by default ``model.safetensors``."""
        state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
        # Cloning breaks storage sharing between tensors, which safetensors refuses.
        self.write_tensors(path or self.weights, {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()})

    def _inside(self, path: Path | str) -> Path:
        """A file of this run: a name relative to it, or a path inside it."""
        path = Path(path)
        full = path if path.is_absolute() or path.parts[: len(self.path.parts)] == self.path.parts else self.path / path
        if self.path.resolve() not in full.resolve().parents:
            raise ValueError(f"{full} is not inside the run directory {self.path}")
        return full

    def _name(self, full: Path) -> str:
        """A file's name in the manifest: its path inside the run, with forward slashes."""
        return full.resolve().relative_to(self.path.resolve()).as_posix()

    def _write_failed(self, path: Path, error: BaseException, size: int | None = None) -> WriteFailed:
        """One line for a failed write: which file, why, how much space it needed and had, what is kept."""
        code = getattr(error, "errno", None)
        if code is None:  # safetensors reports the OS error inside its own text: "... Os { code: 28, ..."
            found = re.search(r"code: (\d+)", str(error))
            code = int(found.group(1)) if found else None
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = None
        need = f"; it needs about {_size(size)}" if size else ""
        if code in _DISK_FULL:
            why = f"the disk is full ({_size(free)} free{need})" if free is not None else f"the disk is full{need}"
        elif code == errno.EFBIG:
            why = f"the file would pass this process's file size limit (ulimit -f){need}"
        else:
            why = getattr(error, "strerror", None) or " ".join(str(error).split())[:200]
        kept = f"the previous {path.name} is kept as it was" if path.exists() else f"no {path.name} was written"
        return WriteFailed(f"cannot write {path}: {why}; {kept}, and the run's other files are intact")

    # ── the manifest ─────────────────────────────────────────────────────────────────────
    def _read_manifest(self) -> dict[str, dict]:
        """The manifest's entries, by name ({} for a run written before manifests, or not yet begun)."""
        try:
            files = json.loads(self.manifest.read_text(encoding="utf-8"))["files"]
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise TrainwrightError(
                f"{self.manifest} is damaged (not the JSON trainwright wrote), so the run's files cannot be checked; "
                "restore it from a backup, or delete it to use the run unchecked"
            ) from None
        if not isinstance(files, dict):
            raise TrainwrightError(f"{self.manifest} is damaged; restore it from a backup, or delete it to use the run unchecked")
        return files

    def _record(self, name: str, entry: dict, replacing: bool = False) -> None:
        """Set a file's entry; ``replacing``: the version on disk until the rename (or its absence) stays valid."""
        files = self._read_manifest()
        if replacing:
            old = files.get(name)
            entry = {**entry, "previous": {k: old[k] for k in ("sha256", "bytes")} if old else None}
        files[name] = entry
        atomic_write(self.manifest, json.dumps({"algorithm": "sha256", "files": dict(sorted(files.items()))}, indent=1) + "\n")

    def problems(self, *paths: Path | str) -> dict[Path, str]:
        """The files among ``paths`` that do not match the manifest, each with what is wrong (empty: all
        match). Files the manifest does not list (a run written before manifests) are not checked."""
        files = self._read_manifest()
        found: dict[Path, str] = {}
        for path in paths:
            full = self._inside(path)
            entry = files.get(self._name(full))
            if entry is None:
                continue
            valid = [entry] + ([entry["previous"]] if entry.get("previous") else [])
            if not full.exists():
                if "previous" not in entry or entry["previous"] is not None:
                    found[full] = "is missing, though manifest.json lists it"
                continue
            size = full.stat().st_size
            if all(size != v["bytes"] for v in valid):
                written = valid[0]["bytes"]
                found[full] = f"is damaged: it holds {size:,} bytes, but {written:,} were written (truncated or changed)"
            elif all(_checksum(full)["sha256"] != v["sha256"] for v in valid):
                found[full] = "is damaged: its sha256 differs from the one recorded when it was written (changed on disk)"
        return found

    def verify(self, *paths: Path | str, fix: str = "") -> None:
        """Raise a TrainwrightError naming the first of ``paths`` that does not match the manifest."""
        found = self.problems(*paths)
        if found and self.holder() is not None:
            raise RunLocked(f"{self.path} is being written by process {self.holder()} right now; try again when it has finished")
        for path, problem in found.items():
            raise TrainwrightError(f"{path} {problem}; " + (fix or "restore it from a backup, or train the run again"))

    # ── reading ──────────────────────────────────────────────────────────────────────────
    def read_json(self, path: Path | str) -> Any:
        self.settle()
        path = self.path / path if isinstance(path, str) else path
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainwrightError(
                f"{self.path} has no {path.name}; the run did not finish (resume it with --resume {self.path})"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise TrainwrightError(f"{path} is corrupt; it is not valid JSON") from None


def _checksum(path: Path) -> dict:
    """A file's manifest entry: its sha256 (read in 1 MiB blocks) and size."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"sha256": digest.hexdigest(), "bytes": size}


def _size(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def default_run_name(data_name: str, model_type: str) -> str:
    stem = re.sub(r"[^\w.\-]+", "-", f"{data_name}-{model_type}").strip("-")
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def unique_name(runs_dir: str | Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ... if a run of that name already exists."""
    candidate, n = name, 1
    while (Path(runs_dir) / candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def environment(device: torch.device, seed: int) -> dict:
    """Versions, platform, device and seed: environment.json, what is needed to repeat a run."""
    versions = {name: _version(name) for name in ("trainwright", "torchmetrics", "scikit-learn")}
    return {
        "trainwright": versions["trainwright"],
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchmetrics": versions["torchmetrics"],
        "scikit-learn": versions["scikit-learn"],
        "numpy": np.__version__,
        "pandas": _version("pandas"),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
