"""The image accuracy targets, measured with the shipped example configs (split seed 0).

- ``examples/digits_images.yaml``: the CNN on ``digits-images`` (target: test accuracy >= 0.985).
- ``examples/shapes.yaml`` on a generated folder of 1000 images per class (3 classes, 32x32 RGB;
  target: >= 0.98), and the same config with ``data.augment: []`` beside it.

Training runs on the CPU and takes minutes (the shapes runs most of it). Prints one line per run
and a table at the end.

    python benchmarks/image_accuracy.py [--only digits|shapes] [--per-class 1000] [--folder data/shapes]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

import trainwright as tw
from trainwright.data.shapes import make_shapes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUIET = Console(quiet=True)


def run(config: Path, overrides: list[str], runs_dir: str, label: str) -> dict:
    started = time.perf_counter()
    result = tw.train(config, overrides=overrides, runs_dir=runs_dir, console=QUIET)
    m = result.metrics
    row = {"run": label, "test accuracy": m["test"]["accuracy"], "val accuracy": m["val"]["accuracy"],
           "best epoch": f"{m['best_epoch']}/{m['epochs']}", "minutes": (time.perf_counter() - started) / 60}
    print(f"{label}: test accuracy {row['test accuracy']:.4f}, val {row['val accuracy']:.4f}, best epoch {row['best epoch']}, "
          f"{row['minutes']:.1f} min ({result.dir})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["digits", "shapes"])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--folder", type=Path, help="an existing shapes folder (default: generate one)")
    parser.add_argument("--runs-dir", default=None, help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or scratch
        if args.only in (None, "digits"):
            rows.append(run(EXAMPLES / "digits_images.yaml", [], runs_dir, "digits-images cnn"))
        if args.only in (None, "shapes"):
            folder = args.folder
            if folder is None:
                folder = Path(scratch) / "shapes"
                make_shapes(folder, per_class=args.per_class, size=32)
            source = [f"data.source={folder}"]
            rows.append(run(EXAMPLES / "shapes.yaml", source, runs_dir, "shapes, augmentation on"))
            rows.append(run(EXAMPLES / "shapes.yaml", [*source, "data.augment=[]"], runs_dir, "shapes, augmentation off"))
    print()
    print(f"{'run':28} {'test acc':>9} {'val acc':>9} {'best':>7} {'min':>6}")
    for row in rows:
        print(
            f"{row['run']:28} {row['test accuracy']:9.4f} {row['val accuracy']:9.4f} {row['best epoch']:>7} {row['minutes']:6.1f}"
        )


if __name__ == "__main__":
    main()
