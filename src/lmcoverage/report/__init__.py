"""Self-contained HTML reports and figure helpers for experiment runs."""

from lmcoverage.report.figures import save_figure
from lmcoverage.report.html import Section, Table, write_report

__all__ = ["Section", "Table", "save_figure", "write_report"]
