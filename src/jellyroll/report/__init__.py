"""Reports a person can read: a self-contained HTML file with figures and tables."""

from jellyroll.report.html import Report, Section

__all__ = ["Report", "Section"]
