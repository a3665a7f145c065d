"""Operando lithiation kinetics: follow every region of a slice through a charge.

See ``docs/operando.md``; the driver is :func:`jellyroll.operando.run.run_operando`, the
pure analysis :mod:`jellyroll.operando.core`.
"""

from jellyroll.operando.options import OperandoOptions

__all__ = ["OperandoOptions"]
