"""The study report: ``report.html`` in the study's directory: the best trial, every trial, and
Optuna's own matplotlib plots (optimization history, parameter importances, parallel coordinates).

Optuna draws these with pyplot, so this module selects the Agg backend and closes each figure.

Example:
    >>> write_study_report(Path("runs/digits-mlp-tune"), study, result)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from trainwright.evaluate.figures import png_bytes
from trainwright.report.cv import TEMPLATES, number, uri
from trainwright.rundir import RunDir


def write_study_report(study_dir: Path, study, result: dict) -> Path:
    run = RunDir(study_dir)
    best = result["best"]
    trials = {
        "title": "trials", "note": "value: the trial's best epoch's " + result["metric"] + " (not its last)",
        "columns": ["trial", "state", result["metric"], "epochs", "params", "run"],
        "rows": [[str(t["number"]), t["state"] + (" (excess)" if t["excess"] else "")
                  + (f" (retry of {t['retry_of']})" if t["retry_of"] is not None else ""), number(t["value"]),
                  str(t["epochs"] or "-"), json.dumps(t["params"]), t["run"] or "-"] for t in result["all"]],
    }
    html = TEMPLATES.get_template("selection.html.j2").render(
        title=f"hyperparameter search: {result['study']}",
        lines=[(f"storage {result['storage']}; {result['counts']['finished']} of {result['trials']} trials finished, "
               f"{result['counts']['failed']} failed; pruner {result['pruner']}; {result['epochs']} epochs in all"),
               f"best: trial {best['number']}, {result['metric']} {number(best['value'])}; run {best['run']}"],
        verdict=f"best parameters: {json.dumps(best['params'])}", tables=[trials], figures=optuna_figures(study),
        config=(study_dir / "best.yaml").read_text(encoding="utf-8") if (study_dir / "best.yaml").is_file() else "",
    )
    run.write_text(run.report, html)
    return run.report


def optuna_figures(study) -> list[dict]:
    """Optuna's plots as data URIs; a plot the study cannot give yet (too few trials) is left out."""
    import matplotlib

    matplotlib.use("Agg")  # Optuna's plots use pyplot: no display, no window
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as plots  # heavy: only when a study report is written

    figures = []
    for title, plot in (("optimization history", plots.plot_optimization_history),
                        ("parameter importances (fANOVA)", plots.plot_param_importances),
                        ("parallel coordinates", plots.plot_parallel_coordinate)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                ax = plot(study)
            except Exception:  # noqa: BLE001, S112 - e.g. importances need two complete trials
                continue
        figure = (ax[0] if hasattr(ax, "__len__") else ax).figure
        figure.set_size_inches(7, 4)
        figures.append({"title": title, "uri": uri(png_bytes(figure, bbox_inches="tight"))})
        pyplot.close(figure)
    return figures
