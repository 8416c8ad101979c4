"""Argument checks and coercions shared by the public modules: the only place that checks
arguments.  Every function here raises ValueError naming the bad parameter and what is allowed.
"""

from __future__ import annotations

import numbers

ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")


def is_int(v) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def max_sr_bits(man_bits: int) -> int:
    """The most random bits stochastic rounding may use into a format of ``man_bits`` fraction
    bits: the kept bits, the random window below them and the implicit bit fill one float64
    significand (53 bits).  The arithmetic units and accumulators need it (their exact result is
    cut to 53 bits before rounding); quantize keeps the same range so that one rule holds."""
    return 52 - man_bits


def check_rounding(rounding, sr_bits, fmt) -> int:
    """Checks a rounding mode and its ``sr_bits`` for rounding into format ``fmt``; returns the
    number of random bits (0: none, or exact stochastic rounding)."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return check_sr_bits(sr_bits, rounding, fmt.float_container.man_bits, f" for format {fmt}")


def check_sr_bits(sr_bits, rounding, man_bits, what="") -> int:
    """``sr_bits`` as an int (0 for None), checked against ``rounding`` and the format's
    ``man_bits`` (:func:`max_sr_bits`)."""
    if sr_bits is None:
        return 0
    if rounding != "sr":
        raise ValueError(f"sr_bits is only meaningful with rounding='sr', got rounding={rounding!r}")
    hi = max_sr_bits(man_bits)
    if not is_int(sr_bits) or not 1 <= sr_bits <= hi:
        raise ValueError(f"sr_bits must be an int in 1..{hi} (52 - man_bits){what} or None, "
                         f"got {sr_bits!r}")
    return int(sr_bits)
