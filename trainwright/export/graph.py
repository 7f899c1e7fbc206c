"""Capture a trained module as a graph with a dynamic batch (and sequence) size, and write it.

One capture serves both formats: ``torch.export.export`` (non-strict) gives an
``ExportedProgram``; ``.pt2`` is that program saved, ONNX is ``torch.onnx.export`` of it (the
torch.export-based exporter, torch's default since 2.9; ``dynamic_axes`` and the TorchScript
exporter are not used). Text and series models get a dynamic sequence length where the model
allows it (RNN/LSTM/GRU, a text transformer with mean pooling up to its padded length); a model
whose code fixes it (a series transformer flattens the window into its head; [CLS] pooling, see
``models/transformer.py``) keeps the trained length, which is what the run's preprocessing always
gives, and the manifest says so. Recurrent models go through ``recurrent.py`` first.

Example:
    >>> captured = capture(module, x[:8], "text", max_sequence=64)
    >>> write_onnx(captured.program, tmp / "model.onnx"); captured.sequence
    'dynamic'
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trainwright.errors import TrainwrightError
from trainwright.export.recurrent import exportable, recurrent_loops

SEQUENCE_MODALITIES = ("text", "series")


@dataclass(frozen=True)
class Captured:
    program: torch.export.ExportedProgram
    sequence: str | None  # "dynamic" | "static" for text and series, None otherwise
    note: str = ""  # why the sequence length is static, when it is


@contextlib.contextmanager
def quiet():
    """The exporters' progress lines, log warnings ("torchvision is not installed") and internal
    deprecation warnings are noise to a user; a failure still raises."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def capture(module: nn.Module, example: torch.Tensor, modality: str, max_sequence: int | None = None) -> Captured:
    """``module`` (eval mode) as an ``ExportedProgram`` taking a batch like ``example`` (at least 2 rows)."""
    target = exportable(module).eval()
    batch = torch.export.Dim("batch", min=1)
    attempts: list[tuple[dict, str | None]] = [({0: batch}, None)]
    if modality in SEQUENCE_MODALITIES and example.shape[1] >= 2:
        # 0 and 1 are special-cased by torch.export, so a dynamic dimension starts at 2.
        sequence = torch.export.Dim("sequence", min=2, max=max_sequence) if max_sequence else torch.export.Dim("sequence", min=2)
        attempts = [({0: batch, 1: sequence}, "dynamic"), ({0: batch}, "static")]
    failures = []
    for shapes, kind in attempts:
        try:
            with quiet(), recurrent_loops():
                program = torch.export.export(target, (example,), dynamic_shapes=(shapes,))
        except Exception as error:  # noqa: BLE001 - torch.export raises many types; each attempt's reason is kept
            failures.append(_first_line(error))
            continue
        fixed = f"sequence length fixed at {example.shape[1]}, the length the run's preprocessing gives"
        note = fixed if kind == "static" else ""
        return Captured(program, kind, note)
    raise TrainwrightError(f"torch.export cannot capture this model with a dynamic batch size ({failures[-1]}); its forward "
                           f"must not turn the batch size into a Python number (len(x), int(x.shape[0])): pass x.shape[0] to "
                           f"tensor ops")


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("- ")), lines[0] if lines else type(error).__name__)
    return detail.lstrip("- ")[:300]


def write_onnx(program: torch.export.ExportedProgram, path: Path) -> int:
    """The program as one ONNX file (weights inside it up to 2 GB); returns the opset."""
    from trainwright.export.onnx_rnn import RNN_TRANSLATIONS  # lazy: onnxscript, an optional heavy dependency (export extra)

    try:
        # Inside recurrent_loops too: the exporter re-traces the program, and LSTM/GRU shapes traced
        # through torch's default decomposition would fix the sequence length again.
        with quiet(), recurrent_loops():
            onnx_program = torch.onnx.export(program, input_names=["input"], output_names=["output"], verbose=False,
                                             custom_translation_table=RNN_TRANSLATIONS)
            onnx_program.save(path)
    except Exception as error:  # noqa: BLE001 - the exporter's conversion errors are many types
        raise TrainwrightError(f"the ONNX exporter could not convert this model: {_first_line(error)}") from None
    return next(o.version for o in onnx_program.model_proto.opset_import if o.domain in ("", "ai.onnx"))


def write_pt2(program: torch.export.ExportedProgram, path: Path) -> None:
    """The program as a ``torch.export`` archive, loaded back with ``torch.export.load(path).module()``."""
    with quiet():
        torch.export.save(program, path)


def load_pt2(path: Path) -> torch.nn.Module:
    """A saved program as a callable module (torch's loader logs harmless notes about unused symbols)."""
    with quiet():
        return torch.export.load(path).module()
