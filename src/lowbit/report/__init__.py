"""Reports: JSON first (report.json), Markdown and PNG plots rendered from it."""

from .build import SCHEMA, build_report, read_report
from .markdown import render_markdown, table

__all__ = ["SCHEMA", "build_report", "read_report", "render_markdown", "table"]
