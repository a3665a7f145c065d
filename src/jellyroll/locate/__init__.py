"""Slice location: the SWAXS-CT slice placed inside the X-ray CT volume of the same cell.

The pure core is :func:`jellyroll.locate.core.locate_slice`; the stage's driver is
:func:`jellyroll.locate.run.run_locate` (``jellyroll locate``).
"""

from jellyroll.locate.core import Location, locate_slice, pose_parameters
from jellyroll.locate.options import LocateOptions

__all__ = ["LocateOptions", "Location", "locate_slice", "pose_parameters"]
