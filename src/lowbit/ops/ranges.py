"""Integer ranges of quantized formats.

>>> qrange(4, signed=True)
(-8, 7)
>>> qrange(4, signed=True, narrow=True)
(-7, 7)
>>> qrange(3, signed=False)
(0, 7)
"""

from __future__ import annotations

from typing import Tuple

from ..errors import ConfigError

MIN_BITS = 1
MAX_BITS = 16


def check_bits(bits: int, what: str = "bits") -> int:
    """Validate an integer bit-width in 1..16 and return it as ``int``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or not float(bits).is_integer():
        raise ConfigError(f"{what} must be a whole number in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    bits = int(bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"{what} must be in {MIN_BITS}..{MAX_BITS}, got {bits}")
    return bits


def qrange(bits: int, signed: bool, narrow: bool = False) -> Tuple[int, int]:
    """Return ``(qmin, qmax)`` of a ``bits``-bit integer.

    ``narrow`` drops the most negative code of a signed range so it is symmetric
    (-7..7 at 4 bits), which lets a symmetric quantizer use zero-point 0.
    """
    bits = check_bits(bits)
    if not signed:
        return 0, (1 << bits) - 1
    if narrow and bits < 2:
        raise ConfigError("a narrow signed range needs at least 2 bits, got 1")
    qmax = (1 << (bits - 1)) - 1
    qmin = -qmax if narrow else -qmax - 1
    return qmin, qmax


def bits_for_levels(n: int, signed: bool) -> int:
    """Smallest bit-width whose (narrow, if signed) range holds integers with ``|q| <= n``.

    >>> bits_for_levels(3, signed=True)   # -3..3 fits in 3 signed bits
    3
    >>> bits_for_levels(3, signed=False)  # 0..3 fits in 2 unsigned bits
    2
    """
    n = max(int(n), 0)
    unsigned_bits = max(n, 1).bit_length()
    return unsigned_bits + 1 if signed else unsigned_bits
