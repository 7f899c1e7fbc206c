"""One request body -> what the run's preprocessor reads, or a 4xx saying what is wrong.

Accepted bodies:
- ``application/json``: a list of row objects, one row object, or an object of columns
  (``{"column": [values], ...}``, all of one length); images cannot come this way.
- ``multipart/form-data`` with files in the field ``file``: a table (CSV, TSV, Parquet, JSON
  lines, by its suffix), one or more images, or for text one or more ``.txt`` files.
- ``text/csv`` (a table) and, for text models, ``text/plain`` (one text).

Uploads are written to a temporary directory (removed after the request) and read by the run's
own preprocessing, so decoding is exactly as in training (EXIF orientation, modes, resizing).

Example:
    >>> parsed = await read_input(request, schema, config)
    >>> frame, x = predictor.inputs(parsed.data)
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from fastapi import HTTPException, Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from trainwright.serve.schema import RowSchema

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class Parsed:
    data: pd.DataFrame | Path  # rows, or an uploaded table file
    names: list[str] = field(default_factory=list)  # images: the uploaded file names, in row order
    directory: Path | None = None  # uploads, removed by ``close``

    def close(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def unprocessable(detail) -> HTTPException:
    return HTTPException(status_code=422, detail=detail)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_input(request: Request, schema: RowSchema, max_part_bytes: int) -> Parsed:
    kind = media_type(request)
    if kind == "application/json":
        if schema.model is None:
            raise HTTPException(415, "this model reads images: upload them as multipart/form-data in the field 'file'")
        return Parsed(json_rows(await request.body(), schema))
    if kind == "multipart/form-data":
        form = await request.form(max_part_size=max_part_bytes)
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not files:
            raise unprocessable("no file in the form: send the table, image or text file in the field 'file'")
        return await uploads(files, schema)
    if kind in ("text/csv", "text/plain"):
        body = await request.body()
        if kind == "text/plain" and schema.modality == "text":
            return Parsed(pd.DataFrame({schema.names[0]: [body.decode("utf-8", errors="replace")]}))
        if kind == "text/csv" and schema.modality != "images":
            return _saved({"upload.csv": body}, schema)
    csv = " or text/csv" if schema.modality != "images" else ""
    raise HTTPException(415, f"cannot read a {kind or 'body without a content type'}: send application/json rows, "
                             f"a multipart/form-data upload (field 'file'){csv}")


def json_rows(body: bytes, schema: RowSchema) -> pd.DataFrame:
    """Rows validated against the run's columns, as a frame in the run's column order."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    if isinstance(payload, dict) and payload and all(isinstance(v, list) for v in payload.values()):
        lengths = {len(v) for v in payload.values()}
        if len(lengths) > 1:
            raise unprocessable(f"the columns have different lengths ({', '.join(map(str, sorted(lengths)))}); send one value "
                                f"per row in each")
        rows = [dict(zip(payload, values)) for values in zip(*payload.values())]
    elif isinstance(payload, dict):
        rows = [payload]
    elif isinstance(payload, list):
        rows = payload
    else:
        raise unprocessable("send a list of row objects, one row object, or an object of columns")
    if not rows:
        raise unprocessable("no rows to predict")
    try:
        validated = TypeAdapter(list[schema.model]).validate_python(rows)
    except ValidationError as error:
        problems = [{"row": e["loc"][0] if e["loc"] else None, "column": e["loc"][1] if len(e["loc"]) > 1 else None,
                     "error": e["msg"]} for e in error.errors(include_url=False, include_input=False)[:20]]
        first = problems[0]
        where = f"row {first['row']}" + (f", column {first['column']!r}" if first["column"] is not None else "")
        message = f"{where}: {first['error']} (columns: {', '.join(schema.names)})"
        raise unprocessable({"message": message, "errors": problems}) from None
    records = [row.model_dump(by_alias=True) for row in validated]
    others = [key for key in dict.fromkeys(k for r in records for k in r) if key not in schema.names]
    return pd.DataFrame(records, columns=[*schema.names, *others])  # the run's columns first, then any others, as sent


async def uploads(files: list[UploadFile], schema: RowSchema) -> Parsed:
    contents = {}
    for i, upload in enumerate(files):
        contents[f"{i}:{upload.filename or f'file-{i}'}"] = await upload.read()
    if schema.modality == "text" and not any(_suffix(name) in TABLE_SUFFIXES for name in contents):
        texts = [data.decode("utf-8", errors="replace") for data in contents.values()]  # as training reads .txt files
        return Parsed(pd.DataFrame({schema.names[0]: texts}))
    return _saved(contents, schema)


def _suffix(name: str) -> str:
    return Path(name.split(":", 1)[-1]).suffix.lower()


def _saved(contents: dict[str, bytes], schema: RowSchema) -> Parsed:
    """Write the uploads to a fresh temporary directory; images become a frame of their paths."""
    directory = Path(tempfile.mkdtemp(prefix="trainwright-serve-"))
    names = [name.split(":", 1)[-1] for name in contents]
    paths = []
    for i, (name, data) in enumerate(contents.items()):
        suffix = _suffix(name)
        safe = re.sub(r"[^A-Za-z0-9]", "", suffix)  # the stored name is ours, never the client's path
        paths.append(directory / f"{i}.{safe or 'bin'}")
        paths[-1].write_bytes(data)
    if schema.modality == "images":
        return Parsed(pd.DataFrame({schema.names[0]: [str(p) for p in paths]}), names, directory)
    if len(paths) > 1:
        shutil.rmtree(directory, ignore_errors=True)
        raise unprocessable("send one table per request")
    if paths[0].suffix not in TABLE_SUFFIXES:
        shutil.rmtree(directory, ignore_errors=True)
        raise unprocessable(f"cannot read {names[0]!r} as a table: use one of {', '.join(TABLE_SUFFIXES)}")
    return Parsed(paths[0], names, directory)
