"""What every format record shares: the code count and dtype, the list of values, and plain
field values.  A record is a frozen dataclass of facts; it never calls an operation."""

from __future__ import annotations

import numbers

import numpy as np


def code_dtype(bits: int) -> np.dtype:
    """Smallest unsigned numpy integer type with at least ``bits`` bits (``bits <= 64``)."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if bits <= 8 * np.dtype(dt).itemsize:
            return np.dtype(dt)
    raise ValueError(f"codes of {bits} bits do not fit an unsigned numpy integer type")


def coerce(record, ints=(), bools=()):
    """Numpy integers and booleans given for int and bool fields become Python ones (a record
    holds plain values); anything else is left for the field checks to refuse."""
    for name in ints:
        v = getattr(record, name)
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(record, name, int(v))
    for name in bools:
        if isinstance(getattr(record, name), np.bool_):
            object.__setattr__(record, name, bool(getattr(record, name)))

class Coded:
    """What every format with ``bits``-bit codes shares: code count, code dtype, value list.
    A family gives its positive finite values in ``_positive_values()`` (float64, computed from
    its fields alone)."""

    @property
    def n_codes(self) -> int:
        """Number of bit patterns, ``2**bits``."""
        return 1 << self.bits

    @property
    def code_dtype(self):
        """Smallest unsigned numpy integer type that holds a code."""
        return code_dtype(self.bits)

    def values(self):
        """All distinct finite values, ascending, as float64 (formats of at most 16 bits)."""
        if self.bits > 16:
            raise ValueError(f"values() lists formats of at most 16 bits; {self} has {self.bits}")
        pos = np.asarray(self._positive_values(), dtype=np.float64)
        zero = [0.0] if self._has_zero() else []
        return np.unique(np.concatenate([-pos if self._signed_values() else [], zero, pos]))

    def _has_zero(self) -> bool:
        return True

    def _signed_values(self) -> bool:
        return True

    def __str__(self):
        return self.name or self.spec
