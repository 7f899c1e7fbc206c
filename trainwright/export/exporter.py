"""``export_run``: a finished run -> a directory that predicts without trainwright's model code.

```
<out>/
├── model.onnx | model.pt2   the graph: the run's module with its input stage (image normalization)
├── manifest.json            format, inputs and outputs (dtype, shape, dynamic dimensions), task, classes, files
├── parity.json              every parity check: batch, sequence length, max abs / rel difference
├── preprocessor.json        copied from the run: target, task, classes, columns, scaling, window
├── preprocessor.skops       tables: the fitted scikit-learn preprocessing
├── tokenizer.json           text: the tokenizer
├── calibration.json         when the run was calibrated
├── threshold.json           when the run has a binary decision threshold (evaluate.threshold)
└── model.json               the run's architecture facts, for reference
```
Everything is written into a temporary directory beside ``<out>`` and renamed at the end, after
the parity check passed: a failed export leaves nothing behind.

Example:
    >>> result = export_run("runs/word-order-lstm", "onnx")
    >>> result["path"], result["parity"]["max_abs"]
    ('runs/word-order-lstm/export-onnx', 2.9e-07)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainwright.data.preprocessors import saved_modality
from trainwright.errors import TrainwrightError
from trainwright.export.graph import capture, load_pt2, write_onnx, write_pt2
from trainwright.export.manifest import FORMATS, Manifest, TensorSpec, output_meaning
from trainwright.export.parity import check_parity
from trainwright.export.rows import rows_inputs, test_inputs
from trainwright.predict import load
from trainwright.rundir import RunDir

COPIED = {"preprocessor_facts": "preprocessor.json", "preprocessor": "preprocessor.skops", "tokenizer": "tokenizer.json",
          "calibration": "calibration.json", "threshold": "threshold.json", "model_facts": "model.json"}


def _require_onnx() -> dict[str, str]:
    try:  # optional: the `export` extra (onnx, onnxscript for the exporter; onnxruntime for the parity check)
        import onnx
        import onnxruntime
        import onnxscript
    except ImportError as error:
        raise TrainwrightError(f"exporting to ONNX needs {error.name}: pip install 'trainwright[export]'") from None
    return {"onnx": onnx.__version__, "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}


def _graph_runner(path: Path, format: str) -> Callable[[np.ndarray], np.ndarray]:
    """The written graph, loaded back from its file: what the parity check runs."""
    if format == "onnx":
        import onnxruntime  # optional: the `export` extra, checked by _require_onnx

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1  # the check is small; do not contend with the reference run
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    module = load_pt2(path)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).float().numpy()

    return run


def _example(x: torch.Tensor) -> torch.Tensor:
    """A few real rows to trace with: at least 2, since torch.export fixes a batch size of 1."""
    example = x[:8]
    return example if len(example) >= 2 else example.repeat(2, *([1] * (example.ndim - 1)))


def export_run(run_dir: str | Path, format: str = "onnx", out_dir: str | Path | None = None, *, rows: Any = None,
               model: torch.nn.Module | None = None, echo: Callable[[str], None] | None = print) -> dict:
    """Export a run's model to ``format`` ("onnx" or "torch-export") and prove it computes the same.

    ``out_dir``: where to write (default ``<run>/export-<format>``; it must not exist). ``rows``:
    a frame or table file to run the parity check on, instead of the run's test split rebuilt from
    its config and data. ``model``: the module class instance for a run of your own module.
    Returns the manifest as a dict, plus ``path`` and the full ``parity`` result.
    """
    if format not in FORMATS:
        raise TrainwrightError(f"unknown export format {format!r}; use one of: {', '.join(FORMATS)}")
    versions = {"trainwright": importlib.metadata.version("trainwright"), "torch": torch.__version__,
                **(_require_onnx() if format == "onnx" else {})}
    run = RunDir.open(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / f"export-{format}"
    if out.exists():
        raise TrainwrightError(f"{out} already exists; remove it or choose another output directory (-o DIR)")
    trained = load(run.path, model=model, device="cpu")
    modality = saved_modality(run.path)
    x, where = rows_inputs(trained, rows) if rows is not None else test_inputs(trained, run)
    x = torch.as_tensor(np.asarray(x))
    if len(x) == 0:
        raise TrainwrightError("no rows to check the export on; give some with rows=...")
    pre = trained.preprocessor
    max_sequence = getattr(pre, "length", None) if modality == "text" else None
    captured = capture(trained.module, _example(x), modality, max_sequence)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # with the umask's permissions, like the run directory (mkdtemp's are owner-only)
    try:
        graph = tmp / FORMATS[format]
        opset = write_onnx(captured.program, graph) if format == "onnx" else write_pt2(captured.program, graph)
        parity = check_parity(trained.module, _graph_runner(graph, format), x, modality, captured.sequence == "dynamic")
        parity["rows"] = where
        parity["runtime"] = "onnxruntime (CPU)" if format == "onnx" else "torch.export.load(...).module()"
        (tmp / "parity.json").write_text(json.dumps(parity, indent=2) + "\n", encoding="utf-8")
        files = {"graph": graph.name, "parity": "parity.json"}
        for role, name in COPIED.items():
            if (run.path / name).is_file():
                shutil.copy2(run.path / name, tmp / name)
                files[role] = name
        manifest = _manifest(trained, run, format, graph.name, opset, versions, modality, captured, max_sequence, x, files,
                             parity)
        manifest.write(tmp)
        os.rename(tmp, out)  # atomic on one file system: the directory appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if echo:
        for line in summary_lines(manifest, parity, out):
            echo(line)
    return {**manifest.model_dump(), "path": str(out), "parity": parity}


def _manifest(trained, run, format, graph, opset, versions, modality, captured, max_sequence, x, files, parity) -> Manifest:
    pre = trained.preprocessor
    dims: list[int | str] = ["batch", *x.shape[1:]]
    if captured.sequence == "dynamic":
        dims[1] = "sequence"
    n_out = pre.n_outputs
    exporter = "torch.export.export + " + ("torch.onnx.export (dynamo)" if format == "onnx" else "torch.export.save")
    return Manifest(
        format=format, graph=graph, exporter=exporter, opset=opset, versions=versions,
        run=run.path.name, model=trained.config.model.type, modality=modality, task=pre.task, target=str(pre.target),
        classes=list(pre.classes), inputs=[TensorSpec(name="input", dtype=str(x.numpy().dtype), shape=dims)],
        outputs=[TensorSpec(name="output", dtype="float32", shape=["batch", n_out])],
        output_meaning=output_meaning(pre.task, modality, list(pre.classes)),
        sequence=captured.sequence, max_sequence=max_sequence if captured.sequence == "dynamic" else None, note=captured.note,
        files=files, batch_size=int(trained.config.evaluate.batch_size), delimiter=trained.config.data.delimiter,
        encoding=trained.config.data.encoding,
        parity={k: parity[k] for k in ("max_abs", "max_rel", "passed", "rtol", "atol")},
    )


def summary_lines(manifest: Manifest, parity: dict, out: Path) -> list[str]:
    """What ``export`` prints: the graph, its dynamic dimensions, the parity result."""
    shape = " x ".join(map(str, manifest.inputs[0].shape))
    runtime = "onnxruntime" if manifest.format == "onnx" else "the loaded .pt2"
    lengths = sorted({c["sequence"] for c in parity["checks"] if "sequence" in c})
    batches = sorted({c["batch"] for c in parity["checks"]})
    at = f"batch {', '.join(map(str, batches))}" + (f"; sequence length {', '.join(map(str, lengths))}" if lengths else "")
    lines = [f"exported {manifest.run} ({manifest.model}, {manifest.modality}) to {out}/{manifest.graph}: "
             f"input {manifest.inputs[0].dtype} {shape}" + (f" ({manifest.note})" if manifest.note else "")]
    lines.append(f"parity, {runtime} vs PyTorch on {parity['rows']}, {at}: max abs diff {parity['max_abs']:.2e}, "
                 f"max rel diff {parity['max_rel']:.2e} (rtol {parity['rtol']:g}, atol {parity['atol']:g}): passed")
    return lines
