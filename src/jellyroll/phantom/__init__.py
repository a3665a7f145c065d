"""The digital twin: a simulated wound cell that produces every measurement with its truth.

Start with :func:`jellyroll.phantom.twin.make_twin` (one slice in one state) and
:func:`jellyroll.phantom.write.write_phantom` (all files of ``jellyroll phantom``).
"""
