"""``track:`` in a config: where a run is also logged, besides its run directory.

``track: {mlflow: true, tensorboard: true, experiment: digits}``: ``mlflow: true`` is a local SQLite
store beside the runs (``<runs dir>/mlflow.db``, nothing to run; ``mlflow ui --backend-store-uri
sqlite:///runs/mlflow.db`` shows it), a string is any MLflow tracking URI (a team's server,
``http://mlflow:5000``). ``tensorboard: true`` writes event files into ``<run>/tensorboard/``.

Example:
    >>> TrackConfig.model_validate({"mlflow": True, "tensorboard": True}).experiment
    'trainwright'
"""

from __future__ import annotations

from pydantic import Field, field_validator

from trainwright.config.base import Frozen

MLFLOW_DB = "mlflow.db"  # the SQLite file ``mlflow: true`` means, in the runs directory


class TrackConfig(Frozen):
    mlflow: bool | str = Field(False, description="true: a SQLite store in the runs directory; or an MLflow tracking URI")
    tensorboard: bool = Field(False, description="event files in <run>/tensorboard: scalars, gradient-norm histograms, the graph")
    experiment: str = Field("trainwright", min_length=1, description="the MLflow experiment the run is logged under")

    @field_validator("mlflow")
    @classmethod
    def _a_uri(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and "://" not in value and value != "databricks":
            raise ValueError("mlflow must be true (a local SQLite store) or a tracking URI such as http://host:5000 or sqlite:///runs/mlflow.db")
        return value
