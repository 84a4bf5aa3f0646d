"""Audit output: a self-contained HTML report with inline SVG charts, and plain-text tables for the CLI.

Every value that came from Azure (resource names, tags, regions, subscription ids, messages) is escaped where it
is written; the page carries a Content-Security-Policy that allows no script and no network fetch at all.
"""

from steward.report.html import render_html
from steward.report.table import render_table

__all__ = ["render_html", "render_table"]
