"""The one exception type for problems a user can fix.

The CLI prints ``str(error)`` as a single line and exits with code 2, without a traceback;
the Python API lets it propagate. Messages say what is wrong and how to fix it.
"""


class TrainwrightError(Exception):
    """Bad input (data, config, paths, checkpoints) that the user can fix.

    Example:
        >>> raise TrainwrightError("target column 'price' is not in data.csv; columns are: a, b")
    """


class TrainingDiverged(TrainwrightError):
    """The loss became NaN or infinite in ``epoch``; the last good checkpoint is kept."""

    def __init__(self, message: str, *, epoch: int = 0, loss: float = float("nan")):
        super().__init__(message)
        self.epoch, self.loss = epoch, loss
