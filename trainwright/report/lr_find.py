"""The learning-rate finder's figure: loss against learning rate (log scale), raw and smoothed,
with the stretch the suggestion comes from and the suggestion marked.

Example:
    >>> png = lr_find_png(sweep.to_dict())   # bytes of a PNG, written as lr_find.png
"""

from __future__ import annotations

from trainwright.evaluate.figures import new_figure, png_bytes


def lr_find_png(sweep: dict) -> bytes:
    figure = new_figure(6.4, 3.8, layout="constrained")
    ax = figure.add_subplot()
    lrs, smoothed = sweep["lrs"], sweep["smoothed"]
    ax.plot(lrs, sweep["losses"], color="0.75", linewidth=0.8, label="loss")
    ax.plot(lrs, smoothed, color="C0", linewidth=1.8, label="smoothed (EMA 0.98)")
    if sweep.get("valley"):
        first, last = sweep["valley"]
        ax.axvspan(lrs[first], lrs[last], color="C2", alpha=0.12, label="longest falling stretch")
    if sweep.get("suggestion") is not None:
        lr = sweep["suggestion"]
        at = min(range(len(lrs)), key=lambda i: abs(lrs[i] - lr))
        ax.axvline(lr, color="C3", linestyle="--", linewidth=1)
        ax.plot([lr], [smoothed[at]], "o", color="C3", label=f"suggestion {lr:.3g}")
        ax.set_title("learning-rate range test", fontsize=10)
    else:
        ax.set_title(f"no suggestion: {sweep.get('reason', '')}"[:90], fontsize=8)
    ax.set_xscale("log")
    if smoothed:
        low, high = min(smoothed), max(smoothed[: max(len(smoothed) // 2, 1)])
        ax.set_ylim(low - 0.05 * (high - low + 1e-12), max(high, smoothed[-1]) * 1.05 + 1e-12)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    return png_bytes(figure)
