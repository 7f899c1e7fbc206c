"""Export: every family's graph matches its PyTorch module on the run's test rows (batch 1 and
many, two sequence lengths for text and series), predictions from the exported directory equal the
run's, and a failed check leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_runs import QUIET, assert_same_predictions, rows, table_csv, tiny_run
from torch import nn

import trainwright as tw
from trainwright.recipes.calibrate import calibrate_run

pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxscript, onnxruntime) is not installed")

from trainwright.export import export_run, load_predictor

FAMILIES = ["table", "images", "text-lstm", "text-transformer", "series-lstm"]


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_export_matches_the_run(tmp_path_factory, tmp_path, name):
    run = tiny_run(tmp_path_factory, name)
    printed: list[str] = []
    result = export_run(run, "onnx", tmp_path / "onnx", echo=printed.append)
    out = tmp_path / "onnx"
    assert sorted(p.name for p in out.iterdir()) == sorted([*result["files"].values(), "manifest.json"])
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # the temporary directory was renamed, nothing else left

    # The check ran at batch 1 and a larger batch (and at two lengths for sequences), all within the bar.
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs"] <= 1e-4 and "test split" in parity["rows"]
    assert {c["batch"] for c in parity["checks"]} >= {1} and max(c["batch"] for c in parity["checks"]) > 1
    if name.startswith(("text", "series")):
        assert result["sequence"] == "dynamic" and result["inputs"][0]["shape"][:2] == ["batch", "sequence"]
        assert len({c["sequence"] for c in parity["checks"]}) == 2
    else:
        assert result["inputs"][0]["shape"][0] == "batch"
    assert printed[-1].startswith("parity, onnxruntime vs PyTorch") and printed[-1].endswith("passed")

    # The exported directory predicts what the run predicts, through onnxruntime.
    frame = rows(name, tmp_path)
    assert_same_predictions(load_predictor(out).predict(frame), tw.load(run).predict(frame))
    if name != "images":  # a dict of columns, as the run's predict takes it
        columns = frame.to_dict("list")
        assert_same_predictions(load_predictor(out).predict(columns), tw.load(run).predict(columns))


def test_torch_export_program_matches_the_run(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory, "text-lstm")
    result = export_run(run, "torch-export", tmp_path / "pt2", echo=None)
    assert result["graph"] == "model.pt2" and result["parity"]["passed"] and result["parity"]["max_abs"] <= 1e-5
    frame = rows("text-lstm", tmp_path)
    assert_same_predictions(load_predictor(tmp_path / "pt2").predict(frame), tw.load(run).predict(frame))


def test_the_calibration_travels_with_the_export(tmp_path_factory, tmp_path):
    """A calibrated run predicts calibrated probabilities; so does its export (numpy calibration)."""
    run = tiny_run(tmp_path_factory, "table")
    copy = tmp_path / "calibrated"
    shutil.copytree(run, copy)
    calibrate_run(copy, "vector")
    export_run(copy, "onnx", tmp_path / "onnx", echo=None)
    assert (tmp_path / "onnx" / "calibration.json").is_file()
    frame = rows("table", tmp_path)
    ours, theirs = load_predictor(tmp_path / "onnx").predict(frame), tw.load(copy).predict(frame)
    assert_same_predictions(ours, theirs)
    uncalibrated = tw.load(copy, calibrated=False).predict(frame)
    assert not np.allclose(ours.filter(like="probability_").to_numpy(), uncalibrated.filter(like="probability_").to_numpy())


def test_a_messy_table_and_its_decision_threshold_predict_the_same_through_onnx(tmp_path_factory, tmp_path):
    """Dropped ids, missing indicators, date features, a semicolon Latin-1 file and threshold.json: the export predicts
    what the run predicts from a frame, a dict of columns, a list of rows and the file, with the run's threshold."""
    run = tiny_run(tmp_path_factory, "messy-table")
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    frame = rows("messy-table", tmp_path, n=40)
    probs = tw.load(copy).predict_proba(frame)[:, 1]
    threshold = float(np.median(probs))  # halfway through these rows, so it decides some of them
    (copy / "threshold.json").write_text(json.dumps({"threshold": threshold, "how": "test"}))
    result = export_run(copy, "onnx", tmp_path / "onnx", echo=None)
    assert result["files"]["threshold"] == "threshold.json" and (result["delimiter"], result["encoding"]) == (";", "latin-1")
    exported, trained = load_predictor(tmp_path / "onnx"), tw.load(copy)
    assert exported.threshold == trained.threshold == threshold
    frame.to_csv(tmp_path / "new.csv", index=False, sep=";", encoding="latin-1")
    for data in (frame, frame.to_dict("list"), frame.to_dict("records"), tmp_path / "new.csv"):
        assert_same_predictions(exported.predict(data), trained.predict(data))
    ours = exported.predict(frame)
    classes = np.asarray(trained.classes)
    np.testing.assert_array_equal(ours["prediction"], classes[(ours[f"probability_{classes[1]}"] >= threshold).astype(int)])
    assert (ours["prediction"] != classes[probs.round().astype(int)]).any()  # the threshold, not 0.5, decided
    assert_same_predictions(exported.predict(frame.iloc[0].to_dict()), trained.predict(frame.iloc[:1]))  # one row


class Net(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.layer = nn.Linear(width, 3)

    def forward(self, x):
        return self.layer(x)


class Drifts(Net):
    """Computes something else once captured by torch.export: the parity check must catch it."""

    def forward(self, x):
        out = self.layer(x)
        return out + 0.01 if torch.compiler.is_exporting() else out


def test_a_failed_parity_check_is_an_error_and_writes_nothing(tmp_path):
    data = {"data": {"source": str(table_csv(tmp_path)), "target": "species"}, "evaluate": {"baseline": False},
            "train": {"epochs": 1}}
    run = tw.train(data, model=Net(9), runs_dir=tmp_path / "runs", name="own", console=QUIET)
    with pytest.raises(tw.TrainwrightError, match=r"does not compute what the model computes: max abs diff 0\.01"):
        export_run(run.dir, "onnx", tmp_path / "out", model=Drifts(9), echo=None)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # the temporary directory is gone
    # The honest module exports fine.
    assert export_run(run.dir, "torch-export", tmp_path / "out", model=Net(9), echo=None)["parity"]["passed"]


def test_bad_requests_are_clear_errors(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory, "table")
    with pytest.raises(tw.TrainwrightError, match="unknown export format 'tflite'"):
        export_run(run, "tflite")
    (tmp_path / "taken").mkdir()
    with pytest.raises(tw.TrainwrightError, match="already exists"):
        export_run(run, "torch-export", tmp_path / "taken")
    with pytest.raises(tw.TrainwrightError, match="not an exported model|neither a trainwright run"):
        load_predictor(tmp_path / "taken")


def test_an_onnx_export_predicts_without_torch(tmp_path_factory, tmp_path):
    """The API and `trainwright predict` on an ONNX export, in a process where `import torch` fails."""
    run = tiny_run(tmp_path_factory, "table")
    export_run(run, "onnx", tmp_path / "onnx", echo=None)
    rows("table", tmp_path).to_csv(tmp_path / "new.csv", index=False)
    script = textwrap.dedent(f"""
        import sys

        class NoTorch:  # any `import torch` raises ImportError, as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        from trainwright.cli import app
        from trainwright.export import load_predictor
        frame = load_predictor({str(tmp_path / 'onnx')!r}).predict({str(tmp_path / 'new.csv')!r})
        print(len(frame), frame["prediction"].iloc[0])
        app(["predict", {str(tmp_path / 'onnx')!r}, {str(tmp_path / 'new.csv')!r}, "-o", {str(tmp_path / 'out.csv')!r}],
            standalone_mode=False)
        assert "torch" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[0] == "12" and "wrote 12 predictions" in result.stdout
    tw.load(run).predict(tmp_path / "new.csv").to_csv(tmp_path / "want.csv", index=False)  # the run's, through a CSV too
    assert_same_predictions(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "want.csv"))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_text_rnns_without_packing_compute_what_the_packed_model_computes(cell, bidirectional):
    from trainwright.export.recurrent import PaddedRecurrent
    from trainwright.models.rnn import Recurrent, RNNConfig

    torch.manual_seed(0)
    model = Recurrent(RNNConfig(type=cell, hidden=8, embedding=8, layers=2, bidirectional=bidirectional), 1, 3, 50).eval()
    ids = torch.randint(2, 50, (6, 12))
    ids[:, 9:] = 0  # padding after the text
    ids[1, 3:] = 0  # a short text
    ids[2] = 0  # an empty one
    with torch.inference_mode():
        torch.testing.assert_close(PaddedRecurrent(model)(ids), model(ids), rtol=1e-5, atol=1e-6)


def test_a_bidirectional_tanh_rnn_exports_with_a_dynamic_length(tmp_path):
    """nn.RNN has no ONNX translation in torch 2.13 (ours emits ONNX RNN nodes) and no while_loop
    decomposition (ours keeps the length symbolic); a text RNN also loses its packed sequences."""
    import onnxruntime

    from trainwright.export.graph import capture, write_onnx
    from trainwright.models.rnn import Recurrent, RNNConfig

    torch.manual_seed(0)
    model = Recurrent(RNNConfig(type="rnn", hidden=8, embedding=8, layers=2, bidirectional=True), 1, 3, 50).eval()
    ids = torch.randint(2, 50, (8, 12))
    ids[:, 8:] = 0
    captured = capture(model, ids, "text", max_sequence=12)
    assert captured.sequence == "dynamic"
    write_onnx(captured.program, tmp_path / "rnn.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "rnn.onnx"), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 12), (5, 7), (3, 2)):
        x = ids[:batch, :length].contiguous()
        with torch.inference_mode():
            want = model(x).numpy()
        np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], want, rtol=1e-3, atol=1e-5)


def test_a_cls_pooling_transformer_exports_with_a_dynamic_batch(tmp_path):
    """The [CLS] vector is expanded to the batch by x.shape[0] (len() fixed the batch size for torch.export); the
    sequence length stays the trained one (see models/transformer.py)."""
    import onnxruntime

    from trainwright.export.graph import capture, write_onnx
    from trainwright.models.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    model = Transformer(TransformerConfig(pooling="cls", d_model=16, heads=2, layers=1, ff=32), (12,), 3, 50).eval()
    ids = torch.randint(2, 50, (8, 12))
    ids[:, 8:] = 0
    captured = capture(model, ids, "text", max_sequence=12)
    assert captured.sequence == "static" and "fixed at 12" in captured.note
    write_onnx(captured.program, tmp_path / "cls.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "cls.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5, 8):
        with torch.inference_mode():
            want = model(ids[:batch]).numpy()
        np.testing.assert_allclose(session.run(None, {"input": ids[:batch].numpy()})[0], want, rtol=1e-3, atol=1e-5)
