"""Reports: JSON first (report.json, written by every run), Markdown and PNG plots rendered
from it; accuracy-vs-size plots with their Pareto fronts."""

from ..train.markdown import render_markdown, table
from ..train.record import SCHEMA, build_report, read_report
from .pareto import pareto_front, save_pareto_plot

__all__ = ["SCHEMA", "build_report", "read_report", "render_markdown", "table", "pareto_front",
           "save_pareto_plot"]
