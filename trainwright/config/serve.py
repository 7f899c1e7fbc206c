"""The settings of ``trainwright serve``: where it listens, how large a request may be, how it batches.

Example:
    >>> ServeConfig(port=8080, batch_wait_ms=2).host
    '127.0.0.1'
"""

from __future__ import annotations

from pydantic import Field

from trainwright.config import Frozen


class ServeConfig(Frozen):
    host: str = Field("127.0.0.1", description="loopback only unless told otherwise (0.0.0.0 listens on every interface)")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="processes; each loads the model and batches its own requests")
    max_body_bytes: int = Field(10 * 2**20, ge=1024, description="a larger request body is refused with 413")
    max_batch_rows: int = Field(
        256, ge=1, description="rows of requests that arrive together run as one forward pass, up to this many"
    )
    batch_wait_ms: float = Field(2.0, ge=0, le=1000, description="how long the first request of a batch waits for others")
    threads: int | None = Field(None, ge=1, description="onnxruntime intra-op threads (default: its own choice)")
