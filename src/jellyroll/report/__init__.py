"""Reports a person can read: a self-contained HTML file with figures and tables."""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "html": ["Report", "Section"],
        "options": ["ReportOptions"],
        "run": ["run_report"],
    },
)
