"""The shape of one input row, from the run's own columns: a pydantic model for validation and
the OpenAPI schema, and the fields of the HTML form.

Tables: one field per feature column (numeric: a number or null, which the run's imputer fills;
categorical: a string or number; date: a date string or null). Text: the text column. Series: the time column and the value
columns (a request sends at least ``lookback`` rows). Images: no JSON rows, an upload.
Other keys are kept and echoed back, as ``predict`` keeps a frame's other columns (an id, the
columns cleaning dropped); a misspelt column still fails, as the real one is then missing.

Example:
    >>> schema = row_schema(predictor.preprocessor, "tabular")
    >>> schema.model.model_json_schema()["required"]
    ['island', 'bill_length_mm', ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # numeric | categorical | text | time | image


@dataclass(frozen=True)
class RowSchema:
    modality: str
    columns: list[Column]  # what one row holds (images: the upload)
    model: type[BaseModel] | None  # None for images: they are uploaded, not sent as JSON
    prediction_fields: dict[str, Any]  # the columns predict adds, for the response schema

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


TYPES: dict[str, Any] = {
    "numeric": float | None,  # null: missing, filled as in training
    "categorical": str | int | float | bool | None,
    "date": str | None,  # a date or datetime string ("2024-03-01 12:30"), turned into numbers as in training
    "text": str,
    "time": str | float,  # a datetime string, or a number for numeric time steps
    "value": float,
}


def _columns(preprocessor: Any, modality: str) -> list[Column]:
    if modality == "tabular":
        return [Column(str(c), preprocessor.kinds[c]) for c in preprocessor.feature_columns]
    if modality == "text":
        return [Column(str(preprocessor.text_column), "text")]
    if modality == "series":
        return [Column(str(preprocessor.time_column), "time"), *(Column(str(c), "value") for c in preprocessor.columns)]
    return [Column(str(preprocessor.image_column), "image")]


def row_schema(preprocessor: Any, modality: str) -> RowSchema:
    """The row model (aliases are the column names, which need not be Python identifiers)."""
    columns = _columns(preprocessor, modality)
    model = None
    if modality != "images":
        fields = {f"column_{i}": (TYPES[c.kind], Field(..., alias=c.name)) for i, c in enumerate(columns)}
        model = create_model("Row", __config__=ConfigDict(extra="allow", populate_by_name=False), **fields)
    if preprocessor.task == "regression":
        prediction: dict[str, Any] = {"prediction": float}
    else:
        label = str | int | float | bool
        prediction = {"prediction": label, **{f"probability_{c}": float for c in preprocessor.classes}}
    return RowSchema(modality, columns, model, prediction)


def response_model(schema: RowSchema) -> type[BaseModel]:
    """``{"predictions": [row, ...]}``: each row echoes its input columns and adds the predictions."""
    fields = {f"out_{i}": (t, Field(..., alias=name)) for i, (name, t) in enumerate(schema.prediction_fields.items())}
    if schema.modality == "series":  # a forecaster answers the next horizon times instead of echoing rows
        fields = {"time": (str | float, Field(..., alias=schema.columns[0].name)), "step": (int, ...),
                  "prediction": (float, ...)}
    row = create_model("Prediction", __config__=ConfigDict(extra="allow"), **fields)
    return create_model("Predictions", predictions=(list[row], ...))
