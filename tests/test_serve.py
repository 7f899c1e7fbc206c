"""The HTTP server, driven over real sockets: uvicorn on 127.0.0.1 (a free port) and httpx.

A table run served from its ONNX export and an image run served from its run directory answer
JSON rows, uploads and the form page (in headless Chromium) with exactly what ``predict`` gives;
every malformed request tried gets a 4xx with a reason; requests that arrive together share a
forward pass."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import DevTools, find_chromium
from tiny_runs import assert_same_predictions, rows, tiny_run

httpx = pytest.importorskip("httpx", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("onnxruntime", reason="the export extra is not installed")

from trainwright.config.serve import ServeConfig
from trainwright.export import export_run, load_predictor
from trainwright.serve import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(path: Path, **settings):
    """uvicorn serving ``path`` in a thread, on 127.0.0.1; yields the base URL."""
    config = ServeConfig(port=free_port(), **settings)
    server = uvicorn.Server(uvicorn.Config(create_app(path, config), host=config.host, port=config.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """The table run's ONNX export, served with a small body limit and a long batching window."""
    run = tiny_run(tmp_path_factory, "table")
    out = tmp_path_factory.mktemp("serve") / "onnx"
    export_run(run, "onnx", out, echo=None)
    with running(out, max_body_bytes=64 * 1024, batch_wait_ms=50) as url:
        yield url, out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The image run, served from its run directory (PyTorch)."""
    run = tiny_run(tmp_path_factory, "images")
    with running(run) as url:
        yield url, run


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def expected(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    return load_predictor(path).predict(frame)


def answered(response) -> pd.DataFrame:
    assert response.status_code == 200, response.text
    return pd.DataFrame(response.json()["predictions"])


def test_json_rows_columns_and_csv_get_what_predict_gives(table, tmp_path):
    url, path = table
    frame = rows("table", tmp_path)
    want = expected(path, frame)
    records = json.loads(frame.to_json(orient="records"))
    got = answered(httpx.post(f"{url}/predict", json=records))
    assert_same_predictions(got, want)
    by_columns = answered(httpx.post(f"{url}/predict", json={c: [r[c] for r in records] for c in records[0]}))
    pd.testing.assert_frame_equal(by_columns, got)
    one = answered(httpx.post(f"{url}/predict", json=records[0]))
    pd.testing.assert_frame_equal(one, got.iloc[:1])
    # Other columns (an id, the target) are kept and echoed, as predict keeps them.
    extra = answered(httpx.post(f"{url}/predict", json=[{"id": 7, **records[0], "species": "Adelie"}]))
    assert extra.loc[0, "id"] == 7 and extra.loc[0, "species"] == "Adelie"
    assert extra.loc[0, "prediction"] == got.loc[0, "prediction"]
    # An uploaded CSV, and a raw text/csv body: the same rows, the same answers.
    csv = frame.to_csv(index=False).encode()
    pd.testing.assert_frame_equal(answered(httpx.post(f"{url}/predict", files={"file": ("new.csv", csv, "text/csv")})), got)
    pd.testing.assert_frame_equal(answered(httpx.post(f"{url}/predict", content=csv, headers={"content-type": "text/csv"})), got)


def test_a_messy_table_with_a_threshold_is_served_as_the_run_predicts(tmp_path_factory, tmp_path):
    """Dates, dropped ids, missing values and a decision threshold: JSON rows, a date field in the schema and a
    semicolon Latin-1 CSV upload, from the ONNX export, answer what the run's own predict gives."""
    import trainwright as tw

    run = tiny_run(tmp_path_factory, "messy-table")
    export_run(run, "onnx", tmp_path / "onnx", echo=None)
    frame = rows("messy-table", tmp_path)
    want = tw.load(run).predict(frame)
    predicted = [c for c in want.columns if c not in frame.columns]  # JSON rows come back with the run's columns first
    records = json.loads(frame.to_json(orient="records"))
    with running(tmp_path / "onnx") as url:
        assert_same_predictions(answered(httpx.post(f"{url}/predict", json=records))[predicted], want[predicted])
        csv = frame.to_csv(index=False, sep=";").encode("latin-1")  # as the run's data were
        assert_same_predictions(answered(httpx.post(f"{url}/predict", files={"file": ("new.csv", csv, "text/csv")})), want)
        body = httpx.get(f"{url}/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
        assert set(body["application/json"]["schema"]["anyOf"][1]["required"]) == {"age", "dose", "ward", "admitted"}


def test_image_uploads_get_what_predict_gives(images, tmp_path):
    url, run = images
    arrays = list(rows("images", tmp_path, n=3)["image"])
    files = [("file", (f"digit-{i}.png", png(a), "image/png")) for i, a in enumerate(arrays)]
    got = answered(httpx.post(f"{url}/predict", files=files))
    for i, array in enumerate(arrays):
        (tmp_path / f"digit-{i}.png").write_bytes(png(array))
    want = expected(run, pd.DataFrame({"image": [str(tmp_path / f"digit-{i}.png") for i in range(3)]}))
    assert got["image"].tolist() == ["digit-0.png", "digit-1.png", "digit-2.png"]  # the client's names, not our temporary paths
    assert_same_predictions(got.drop(columns="image"), want.drop(columns="image"))


def malformed_table_requests(url: str) -> dict[str, tuple[int, dict]]:
    good = {"island": "Dream", "bill_length_mm": 40.1, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0, "body_mass_g": 3800.0,
            "sex": "male"}
    missing = {k: v for k, v in good.items() if k != "body_mass_g"}
    return {
        "not JSON": (400, {"content": b"{rows", "headers": {"content-type": "application/json"}}),
        "a number": (422, {"json": 5}),
        "no rows": (422, {"json": []}),
        "a row that is a list": (422, {"json": [[1, 2, 3]]}),
        "a missing column": (422, {"json": [good, missing]}),
        "a misspelt column": (422, {"json": [{**{k: v for k, v in good.items() if k != "sex"}, "sexx": "male"}]}),
        "text in a numeric column": (422, {"json": [{**good, "body_mass_g": "heavy"}]}),
        "columns of different lengths": (422, {"json": {k: [v, v] if k != "sex" else [v] for k, v in good.items()}}),
        "an unknown content type": (415, {"content": b"<rows/>", "headers": {"content-type": "application/xml"}}),
        "no content type": (415, {"content": b"x"}),
        "a body over the limit": (413, {"json": [good] * 2000}),
        "a form without a file": (422, {"data": {"note": "hello"}, "files": {"other": ("a.txt", b"x")}}),
        "two tables": (422, {"files": [("file", ("a.csv", b"x\n1\n")), ("file", ("b.csv", b"x\n1\n"))]}),
        "a table of another format": (422, {"files": {"file": ("rows.xlsx", b"PK\x03\x04")}}),
        "a CSV without the columns": (422, {"files": {"file": ("rows.csv", b"a,b\n1,2\n")}}),
        "a CSV that is not a table": (422, {"files": {"file": ("rows.csv", b"")}}),
    }


def test_every_malformed_request_is_a_4xx_with_a_reason(table, images):
    url, _ = table
    cases = malformed_table_requests(url)
    image_url, _ = images
    cases_for = {name: (url, case) for name, case in cases.items()}
    cases_for.update({
        "an image that cannot be decoded": (image_url, (422, {"files": {"file": ("cat.png", b"\x89PNG\r\n\x1a\nnot really")}})),
        "one good and one bad image": (image_url, (422, {"files": [("file", ("ok.png", png(np.zeros((8, 8), np.uint8)))),
                                                                     ("file", ("bad.jpg", b"\xff\xd8\xff garbage"))]})),
        "JSON rows for an image model": (image_url, (415, {"json": [{"image": "a.png"}]})),
    })
    for name, (base, (status, request)) in cases_for.items():
        response = httpx.post(f"{base}/predict", **request)
        assert response.status_code == status, (name, response.status_code, response.text)
        detail = response.json()["detail"]
        assert detail, name
        assert "Traceback" not in response.text and "/tmp/" not in response.text, (name, response.text)
        if name == "a missing column":
            assert "row 1, column 'body_mass_g': Field required" in detail["message"]
        if name == "a misspelt column":
            assert "column 'sex': Field required" in detail["message"]
        if name == "one good and one bad image":
            assert "bad.jpg" in detail
    # A chunked body (no Content-Length) over the limit is cut off as it streams in.
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = httpx.post(f"{url}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text


def test_requests_that_arrive_together_share_a_forward_pass(table, tmp_path):
    url, _ = table
    records = json.loads(rows("table", tmp_path).to_json(orient="records"))
    before = httpx.get(f"{url}/health").json()

    async def burst():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(*(client.post(f"{url}/predict", json=[record]) for record in records))

    answers = asyncio.run(burst())
    assert all(a.status_code == 200 for a in answers)
    # Each answer is its own row's prediction.
    assert [a.json()["predictions"][0]["bill_length_mm"] for a in answers] == [r["bill_length_mm"] for r in records]
    after = httpx.get(f"{url}/health").json()
    requests, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert requests == len(records) and batches < requests  # 12 requests in a 50 ms window: fewer forward passes


def test_health_openapi_and_defaults(table):
    url, _ = table
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["backend"] == "OnnxPredictor" and health["model"] == "table"
    schema = httpx.get(f"{url}/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    row = body["application/json"]["schema"]["anyOf"][1]
    assert set(row["required"]) == {"island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"}
    assert "multipart/form-data" in body
    assert ServeConfig().host == "127.0.0.1"


def chromium_form(chromium: str, url: str, fill: str = "", upload: Path | None = None) -> tuple[dict, list[str]]:
    """Open the form page, fill it (a script, or a file for the upload field), submit, and read the answer."""
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(chromium, Path(profile))
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "DOM"):
                tools.send(f"{domain}.enable", session=session)
            tools.send("Page.navigate", {"url": url}, session=session)
            tools.wait_for("Page.loadEventFired")

            def evaluate(expression: str):
                answer = tools.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
                return answer["result"].get("value")

            if upload is not None:
                root = tools.send("DOM.getDocument", session=session)["root"]["nodeId"]
                node = tools.send("DOM.querySelector", {"nodeId": root, "selector": "input[type=file]"}, session=session)
                node = node["nodeId"]
                tools.send("DOM.setFileInputFiles", {"files": [str(upload)], "nodeId": node}, session=session)
            evaluate(fill + "; document.querySelector('button[type=submit]').click()")
            deadline = time.monotonic() + 30
            while evaluate("document.getElementById('result').dataset.state") not in ("done", "error"):
                assert time.monotonic() < deadline, "the page did not answer"
                time.sleep(0.05)
            shown = json.loads(evaluate(
                "JSON.stringify({state: document.getElementById('result').dataset.state,"
                " error: document.getElementById('error').textContent,"
                " head: [...document.querySelectorAll('#result th')].map(c => c.textContent),"
                " cells: [...document.querySelectorAll('#result td')].map(c => c.textContent)})"))
        finally:
            tools.close()
    thrown = [e for e in tools.events if e.get("method") == "Runtime.exceptionThrown"]
    errors = [e["params"]["exceptionDetails"].get("text", "") for e in thrown]
    return shown, errors


def test_the_form_page_answers_in_chromium(table, images, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get); `make test` installs it")
    url, path = table
    page = httpx.get(url)
    assert page.status_code == 200 and 'data-column="bill_length_mm"' in page.text and "<script src" not in page.text
    row = {"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217.0, "body_mass_g": 5076.0,
           "sex": ""}
    fill = "; ".join(f"document.querySelector('[data-column=\"{k}\"]').value = {json.dumps(str(v))}" for k, v in row.items())
    shown, errors = chromium_form(chromium, url + "/", fill)
    assert shown["state"] == "done" and errors == [], (shown, errors)
    want = expected(path, pd.DataFrame([{**row, "sex": None}])).iloc[0]
    answer = dict(zip(shown["head"], shown["cells"]))
    assert answer["prediction"] == str(want["prediction"])
    column = f"probability_{want['prediction']}"
    assert float(answer[column]) == pytest.approx(float(want[column]), abs=1e-4)
    # The image form: one upload, the predicted digit shown.
    image_url, run = images
    (tmp_path / "seven.png").write_bytes(png(rows("images", tmp_path, n=8)["image"].iloc[7]))
    shown, errors = chromium_form(chromium, image_url + "/", upload=tmp_path / "seven.png")
    assert shown["state"] == "done" and errors == [], (shown, errors)
    want = expected(run, pd.DataFrame({"image": [str(tmp_path / "seven.png")]})).iloc[0]
    assert dict(zip(shown["head"], shown["cells"]))["prediction"] == str(want["prediction"])
