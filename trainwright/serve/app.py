"""The HTTP server: FastAPI on uvicorn, for a run directory or an exported one.

- ``POST /predict``: JSON rows (a list of row objects, one row, or an object of columns), an
  uploaded table, image(s) or text file(s); answers ``{"predictions": [row, ...]}``, each row
  what ``predict`` writes for it (the input columns, ``prediction``, ``probability_<class>``; a
  forecaster: the next ``horizon`` times). Requests that arrive together share a forward pass.
- ``GET /health``: the model, the backend, and how many requests and batches it has answered.
- ``GET /``: a form for one example (``page.py``); ``GET /docs``: the OpenAPI page, whose
  schema names the run's columns.

Every request a client can fix gets a 4xx with the reason: 400 (not JSON), 413 (body over
``max_body_bytes``), 415 (a body this model cannot read), 422 (a malformed row, a missing or
unknown column, a value of the wrong type, an image that cannot be decoded, too few rows).

Example:
    >>> serve("runs/digits-mlp/export-onnx", port=8000)        # http://127.0.0.1:8000/
    >>> app = create_app("runs/digits-mlp")                      # for uvicorn or a test client
"""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from trainwright.config.serve import ServeConfig
from trainwright.errors import TrainwrightError
from trainwright.export.predictor import Predictor, load_predictor
from trainwright.serve.batcher import Batcher, inputs_runner, rows_runner
from trainwright.serve.inputs import Parsed, read_input
from trainwright.serve.page import form_page
from trainwright.serve.schema import RowSchema, response_model, row_schema

log = logging.getLogger("trainwright.serve")
ENV_PATH, ENV_CONFIG = "TRAINWRIGHT_SERVE_PATH", "TRAINWRIGHT_SERVE_CONFIG"


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, by its Content-Length or as it streams in."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            body = json.dumps({"detail": self._message()}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body without a length: stop reading it
                raise HTTPException(413, self._message())
            return message

        return await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.limit} bytes; send fewer rows per request"


def _request_body_schema(schema: RowSchema) -> dict:
    """The OpenAPI request body: JSON rows named by the run's columns, or an upload."""
    upload = {"type": "object", "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
              "required": ["file"]}
    content: dict[str, Any] = {"multipart/form-data": {"schema": upload}}
    if schema.model is not None:
        row = schema.model.model_json_schema(by_alias=True)
        columns = {"type": "object", "title": "Columns",
                   "properties": {name: {"type": "array", "items": prop} for name, prop in row["properties"].items()}}
        content = {"application/json": {"schema": {"anyOf": [{"type": "array", "items": row, "title": "Rows"}, row, columns]}},
                   **content, "text/csv": {"schema": {"type": "string"}}}
    return {"requestBody": {"required": True, "content": content}}


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-able rows: NaN as null, times as ISO strings, numpy numbers as plain numbers."""
    return json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))


def _named(message: str, parsed: Parsed) -> str:
    """Messages name the client's files, not our temporary copies of them."""
    if parsed.directory is None:
        return message
    if isinstance(parsed.data, pd.DataFrame):
        for path, name in zip(parsed.data.iloc[:, 0], parsed.names):
            message = message.replace(str(path), name)
    else:
        message = message.replace(str(parsed.data), parsed.names[0])
    return message.replace(str(parsed.directory) + os.sep, "")


def create_app(path: str | Path, config: ServeConfig | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The app for a run directory or an exported directory (its model loaded once, here)."""
    config = config or ServeConfig()
    predictor = predictor or load_predictor(path, threads=config.threads)
    name = predictor.name or Path(path).resolve().name
    schema = row_schema(predictor.preprocessor, predictor.modality)
    by_rows = predictor.modality in ("tabular", "text")  # row-by-row preprocessing: batch whole predictions
    runner = rows_runner(predictor) if by_rows else inputs_runner(predictor)
    batcher = Batcher(runner, config.max_batch_rows, config.batch_wait_ms / 1000)
    page = form_page(schema, name, predictor.task, predictor.classes, getattr(predictor.preprocessor, "lookback", None))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"{name} (trainwright)", description=f"{predictor.modality} {predictor.task} model served by trainwright",
                  lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("prediction failed")  # the traceback goes to the server's log, never to the client
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def form() -> str:
        return page

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": name, "backend": type(predictor).__name__, "modality": predictor.modality,
                "task": predictor.task, "classes": list(predictor.classes), "columns": schema.names,
                "requests": batcher.requests, "batches": batcher.batches}

    def prepare(parsed: Parsed) -> tuple[pd.DataFrame, Any]:
        """Images and series: decode or window one request's data, in a worker thread."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame, x = predictor.inputs(parsed.data)
        if schema.modality == "images" and len(frame) < len(parsed.names):  # some uploads are not images
            raise TrainwrightError("; ".join(str(w.message) for w in caught) or "an image cannot be decoded")
        return frame, x

    async def answer(parsed: Parsed) -> pd.DataFrame:
        if by_rows and isinstance(parsed.data, pd.DataFrame):  # JSON rows: preprocessing and all, batched
            return await batcher(parsed.data, len(parsed.data))
        if by_rows:  # an uploaded table brings its own rows: predicted as it is
            return await run_in_threadpool(predictor.predict, parsed.data)
        frame, x = await run_in_threadpool(prepare, parsed)
        outputs = await batcher(x, len(x))
        result = await run_in_threadpool(predictor.results, frame, outputs)
        if schema.modality == "images":  # the client's file names, not our temporary paths
            names = dict(zip(parsed.data.iloc[:, 0], parsed.names))
            result[schema.names[0]] = [names[path] for path in frame.iloc[:, 0]]
        return result

    responses = {200: {"model": response_model(schema)}, 400: {"description": "the body is not valid JSON"},
                 413: {"description": "the body is too large"}, 415: {"description": "a body this model cannot read"},
                 422: {"description": "a malformed row, a missing or unknown column, an image that cannot be decoded"}}

    @app.post("/predict", openapi_extra=_request_body_schema(schema), responses=responses)
    async def predict(request: Request) -> JSONResponse:
        """Predictions for JSON rows or an uploaded table, image or text; each row as ``predict`` writes it."""
        parsed = await read_input(request, schema, config.max_body_bytes)
        try:
            result = await answer(parsed)
        except TrainwrightError as error:  # the data do not fit the model: the client can fix it
            raise HTTPException(422, _named(str(error), parsed)) from None
        finally:
            parsed.close()
        return JSONResponse({"predictions": _records(result)})

    return app


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory`` with several workers: each worker process builds its own app."""
    return create_app(os.environ[ENV_PATH], ServeConfig.model_validate_json(os.environ[ENV_CONFIG]))


def check_address(host: str, port: int) -> None:
    """A clear error, before the model loads, when ``host:port`` cannot be listened on (taken, or no such address)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket does not count
            probe.bind(address)
    except socket.gaierror as error:
        message = f"cannot listen on {host!r} ({error.strerror}); give an address of this machine (--host)"
        raise TrainwrightError(message) from None
    except OSError as error:
        raise TrainwrightError(f"cannot listen on {host}:{port} ({error.strerror}); choose another port (--port) or stop what "
                               f"uses it") from None


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, **settings: Any) -> None:
    """Serve a run directory or an exported directory until interrupted (``trainwright serve``)."""
    config = ServeConfig(host=host, port=port, workers=workers, **settings)
    check_address(config.host, config.port)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this machine can use the model (there is no authentication)",
                    config.host)
    if config.workers == 1:
        app = create_app(path, config)  # loads the model now: a bad directory fails before listening
        uvicorn.run(app, host=config.host, port=config.port, log_level="info")
        return
    load_predictor(path, threads=config.threads)  # the same check once, before the workers start
    os.environ[ENV_PATH], os.environ[ENV_CONFIG] = str(Path(path).resolve()), config.model_dump_json()
    uvicorn.run("trainwright.serve.app:app_from_environment", factory=True, host=config.host, port=config.port,
                workers=config.workers, log_level="info")
