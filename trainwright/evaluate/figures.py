"""Drawing helpers shared by every figure trainwright makes: matplotlib's Agg canvas without pyplot
(no global figure state, no display), PNG bytes, and a user's labels as literal text.

Example:
    >>> figure = new_figure(4, 3)
    >>> figure.add_subplot().plot([1, 2, 3])
    >>> png_bytes(figure)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float, dpi: int = 100, layout: str | None = None) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas."""
    # matplotlib is heavy (~0.3 s): loaded when the first figure is drawn, not when a module imports this one.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def load_matplotlib() -> None:
    """Import what ``new_figure`` uses, now: before forking processes that draw, so they share one import
    (~0.4 s of CPU) instead of each paying for its own."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def png_bytes(figure: Figure, **savefig) -> bytes:
    """The figure as PNG bytes (for a run directory file or a data URI)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return buffer.getvalue()


def plain(text: object, limit: int = 24) -> str:
    """A user's label as literal text (matplotlib would read ``$...$`` as math), cut to ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")
