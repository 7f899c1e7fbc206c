"""⑦ The HTML report of a run, built from its run directory alone (see ``build.py``)."""

from trainwright.report.build import render_report, write_report

__all__ = ["render_report", "write_report"]
