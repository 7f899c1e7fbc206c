"""End to end through the command line: a tiny run (trained in-process), `trainwright export` it, `trainwright
predict` from the exported directory (the run's predictions), and `trainwright serve` it in a
subprocess on 127.0.0.1 that answers JSON rows and refuses a malformed row with a 4xx (and a
second server on its port is a clear error)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pandas as pd
import pytest
from helpers import TRAINWRIGHT, expect_clear_error, run_cli
from tiny_runs import assert_same_predictions, rows, tiny_run

httpx = pytest.importorskip("httpx", reason="the dev extra (httpx) is not installed")
pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxscript, onnxruntime) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_predict_and_serve_from_the_command_line(tmp_path_factory, tmp_path):
    # The tiny penguins run (3 epochs, no baselines), trained in this process and shared with test_export and test_serve;
    # the command's train is tested in test_cli.
    run = str(tiny_run(tmp_path_factory, "table"))

    exported = run_cli("export", run, "-o", str(tmp_path / "onnx"))
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.strip().splitlines()
    assert lines[-1] == str(tmp_path / "onnx")  # the path last, for scripts
    parity = next(line for line in lines if line.startswith("parity, onnxruntime vs PyTorch"))
    max_abs, max_rel = (float(v) for v in re.search(r"max abs diff (\S+), max rel diff (\S+) ", parity).groups())
    assert max_abs <= 1e-5 + 1e-3 and max_rel <= 1e-3 and parity.endswith("passed")
    expect_clear_error(run_cli("export", run, "--format", "tflite"), "unknown export format 'tflite'")

    # predict from the exported directory = predict from the run
    rows("table", tmp_path).to_csv(tmp_path / "new.csv", index=False)
    for source, out in ((tmp_path / "onnx", "from-export.csv"), (run, "from-run.csv")):
        result = run_cli("predict", str(source), str(tmp_path / "new.csv"), "-o", str(tmp_path / out))
        assert result.returncode == 0 and "wrote 12 predictions" in result.stdout, result.stderr
    want = pd.read_csv(tmp_path / "from-run.csv")
    assert_same_predictions(pd.read_csv(tmp_path / "from-export.csv"), want)

    # serve the exported directory: JSON rows answered as predict answers them, a malformed row refused
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen([str(TRAINWRIGHT), "serve", str(tmp_path / "onnx"), "--port", str(port)], stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start within 120 s"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        records = pd.read_csv(tmp_path / "new.csv").head(3).astype(object).where(lambda f: f.notna(), None)
        answer = httpx.post(f"{url}/predict", json=records.to_dict(orient="records"), timeout=30)
        assert answer.status_code == 200, answer.text
        got = pd.DataFrame(answer.json()["predictions"])
        assert list(got["prediction"]) == list(want["prediction"].head(3))
        for column in [c for c in want.columns if c.startswith("probability_")]:
            assert got[column].to_numpy() == pytest.approx(want[column].head(3).to_numpy(), abs=1e-5)
        malformed = httpx.post(f"{url}/predict", json=[{"bill_length_mm": "long", "island": "Biscoe"}], timeout=30)
        assert 400 <= malformed.status_code < 500 and "bill_length_mm" in malformed.text, malformed.text
        expect_clear_error(run_cli("serve", str(tmp_path / "onnx"), "--port", str(port)), f"127.0.0.1:{port}", "in use")
    finally:
        server.send_signal(signal.SIGINT)  # what Ctrl-C sends: uvicorn shuts down cleanly
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
