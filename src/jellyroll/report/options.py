"""Options of the report (``jellyroll report``, top level of ``jellyroll run``)."""

from __future__ import annotations

from pydantic import Field

from jellyroll.options import StageOptions


class ReportOptions(StageOptions):
    """What the report is called."""

    title: str = Field("jellyroll report", min_length=1, description="Title of the HTML report.")
