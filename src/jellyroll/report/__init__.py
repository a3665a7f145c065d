"""Reports a person can read: a self-contained HTML file with figures and tables."""

from jellyroll.report.html import Report, Section
from jellyroll.report.options import ReportOptions
from jellyroll.report.run import run_report

__all__ = ["Report", "ReportOptions", "Section", "run_report"]
