"""Exact-rational reference for posit(n, es) numbers, written from the Posit Standard (2022)
definitions with fractions.Fraction only, independent of fpsim's kernels.

The 2022 standard fixes es = 2; everything here is generalised to any es >= 0 (the classic
"posit<n, es>" of Gustafson & Yonemoto, 2017, which for es = 2 is the standard's format).
n may be anything from 2 to 64 (2..32 is the supported range; the extra room lets a test
decode an (n + 1)-bit posit, which is how the rounding midpoints are characterised).

Encoding of a posit<n, es> code (an n-bit word):

* 0...0 is zero; 1 0...0 is NaR (Not a Real).
* Otherwise, if the sign bit is 1 the value is the negative of the value of the two's
  complement of the whole n-bit word.  For a word with sign bit 0 the remaining n - 1 bits are
    - the regime: a run of m identical bits, ended by the opposite bit or by the end of the
      word; a run of m ones means k = m - 1, a run of m zeros means k = -m;
    - es exponent bits e (when the word ends early the missing low exponent bits are 0);
    - the remaining bits are the fraction f in [0, 1), with a hidden 1.
  value = useed**k * 2**e * (1 + f) with useed = 2**(2**es), i.e. 2**(k * 2**es + e) * (1 + f).

  (The standard writes the same thing directly on the raw two's-complement fields, without
  negating first: x = ((1 - 3s) + f) * 2**((1 - 2s) * (4r + e + s)) for es = 2; the tests
  check that this form, with 4 replaced by 2**es, agrees with the one above on every code.)

maxpos = useed**(n - 2) (code 0 1...1) and minpos = useed**-(n - 2) (code 0 0...01).

Rounding (posit_round) follows the 2022 standard, section "Rounding": a value that is a posit
is unchanged; |x| > maxpos gives sign(x) * maxpos; 0 < |x| < minpos gives sign(x) * minpos;
otherwise x goes to the nearest n-bit code *as if the posit bit string were continued to
infinite precision beyond n bits*, and when it is exactly halfway between two codes, to the
one whose bit string ends in 0.  So nearness is measured on the bit string, not on the value:

* where the (n+1)-th bit of the infinite encoding is a fraction bit, the halfway point is
  the arithmetic mean of the two neighbours (ordinary round-to-nearest-even on the value);
* where it is an exponent bit or a regime bit (large or tiny magnitudes, where the exponent is
  partly or wholly cut off) the halfway point between neighbours lo and hi is the value of the
  (n+1)-bit posit whose code is 2 * code(lo) + 1, which is a power of two *between* them in
  the geometric sense, not (lo + hi) / 2.  Example, posit<8, 2>: between 65536 = 2**16 (0x7C)
  and 262144 = 2**18 (0x7D) the tie point is 2**17, so 144179.2 rounds to 262144 even though it
  is nearer to 65536 in value.

This is what the standard's text prescribes and what SoftPosit, the de facto reference, does:
its p16 kernels (e.g. p16_mul.c) take the first cut-off bit of the regime/exponent/fraction
string as "bitNPlusOne" -- when the exponent bit itself is cut off (regA == 14) that exponent
bit is the rounding bit -- and add (lsb | bitsMore) to the truncated code, i.e. round half to
even on the bit string; the regime is saturated to maxpos/minpos instead of rounding to 0/NaR.
The same reading of the standard (bit-string midpoint, 144179.2 -> 262144 in posit8) is spelled
out in the unum-computing thread "Understanding Bankers' Rounding for Posits" (2025).

Public functions:
    posit_decode(code, n, es) -> Fraction | None      (None for NaR)
    posit_encode_exact(value, n, es) -> int           (ValueError unless value is a posit)
    posit_round(value, n, es) -> int                  (code of the rounded value)
    posit_round_value(value, n, es) -> Fraction       (decode(round(value)))
    posit_values(n, es) -> list[Fraction]             (all finite values, ascending)
    posit_maxpos(n, es), posit_minpos(n, es) -> Fraction
    posit_nar_code(n) -> int
"""

from fractions import Fraction
from functools import lru_cache

__all__ = [
    "posit_decode",
    "posit_encode_exact",
    "posit_round",
    "posit_round_value",
    "posit_values",
    "posit_maxpos",
    "posit_minpos",
    "posit_nar_code",
]


def _check(n: int, es: int) -> None:
    if not isinstance(n, int) or not isinstance(es, int):
        raise TypeError("n and es must be ints")
    if not 2 <= n <= 64:
        raise ValueError(f"posit width n={n} outside 2..64")
    if es < 0:
        raise ValueError(f"es={es} must be >= 0")


def _pow2(s: int) -> Fraction:
    """2**s exactly, for any integer s."""
    return Fraction(1 << s) if s >= 0 else Fraction(1, 1 << -s)


def _floor_log2(a: Fraction) -> int:
    """Largest s with 2**s <= a, for a > 0."""
    p, q = a.numerator, a.denominator
    s = p.bit_length() - q.bit_length()
    # 2**s <= a  <=>  p * 2**-s >= q
    if s >= 0:
        if p < (q << s):
            s -= 1
    elif (p << -s) < q:
        s -= 1
    return s


def posit_nar_code(n: int) -> int:
    """The NaR code: 1 followed by n - 1 zeros."""
    return 1 << (n - 1)


def posit_maxpos(n: int, es: int) -> Fraction:
    """useed**(n - 2), the value of code 0 1...1."""
    _check(n, es)
    return _pow2((n - 2) << es)


def posit_minpos(n: int, es: int) -> Fraction:
    """useed**-(n - 2), the value of code 0 0...01."""
    _check(n, es)
    return _pow2(-((n - 2) << es))


def posit_decode(code: int, n: int, es: int):
    """Exact value of the n-bit posit code (an int in [0, 2**n)); None for NaR."""
    _check(n, es)
    if not isinstance(code, int) or not 0 <= code < (1 << n):
        raise ValueError(f"code {code!r} is not an {n}-bit word")
    if code == 0:
        return Fraction(0)
    if code == 1 << (n - 1):
        return None
    negative = code >> (n - 1)
    if negative:
        code = (-code) & ((1 << n) - 1)  # two's complement of the whole word; sign bit now 0
    body_bits = n - 1
    first = (code >> (body_bits - 1)) & 1
    i = body_bits - 1  # bit position being examined, from the top of the body down
    run = 0
    while i >= 0 and ((code >> i) & 1) == first:
        run += 1
        i -= 1
    k = run - 1 if first else -run
    # position i (if >= 0) holds the regime terminator; bits i-1 .. 0 follow it
    rest = i if i > 0 else 0
    tail = code & ((1 << rest) - 1)
    if rest >= es:
        frac_bits = rest - es
        e = tail >> frac_bits
        f_int = tail & ((1 << frac_bits) - 1)
    else:  # exponent cut off: the missing low exponent bits are zeros, no fraction
        frac_bits = 0
        e = tail << (es - rest)
        f_int = 0
    scale = (k << es) + e
    value = Fraction((1 << frac_bits) + f_int) * _pow2(scale - frac_bits)
    return -value if negative else value


def _round_half_even(num: int, den: int) -> int:
    """num / den (den > 0) rounded to an integer, ties to even."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def posit_round(value, n: int, es: int) -> int:
    """Code of the posit that value (a Fraction or int) rounds to, by the 2022 standard's rule:
    round to nearest on the infinitely long bit string, ties to the code ending in 0; nonzero
    values never become 0 (they go to +-minpos) nor NaR (they saturate to +-maxpos)."""
    _check(n, es)
    x = Fraction(value)
    if x == 0:
        return 0
    negative = x < 0
    a = -x if negative else x
    maxpos, minpos = posit_maxpos(n, es), posit_minpos(n, es)
    if a >= maxpos:
        code = (1 << (n - 1)) - 1
    elif a <= minpos:
        code = 1
    else:
        scale = _floor_log2(a)  # 2**scale <= a < 2**(scale + 1)
        k = scale >> es         # floor(scale / 2**es): the regime value
        e = scale - (k << es)   # 0 <= e < 2**es: the exponent field
        if k >= 0:
            regime_len, regime = k + 2, ((1 << (k + 1)) - 1) << 1  # k+1 ones, then a 0
        else:
            regime_len, regime = -k + 1, 1                        # -k zeros, then a 1
        # minpos < a < maxpos gives -(n-2) <= k <= n-3, so the regime fits in n - 1 bits.
        # The fraction f = a / 2**scale - 1 lies in [0, 1) and continues as an infinite bit
        # string.  Read regime | e (es bits) | f as a fixed-point number y whose integer part
        # is the n - 1 bits after the sign; rounding y to an integer rounds the bit string to
        # n bits:  y = ((regime << es) + e + f) * 2**shift.  Computed on integers:
        #   y = M * 2**shift + p * 2**(shift - scale) / q,  M = (regime << es) + e - 1.
        shift = n - 1 - regime_len - es
        p, q = a.numerator, a.denominator
        m = (regime << es) + e - 1
        low = min(0, shift, shift - scale)
        num = (m * q << (shift - low)) + (p << (shift - scale - low))
        den = q << -low
        code = _round_half_even(num, den)
    if negative:
        code = (-code) & ((1 << n) - 1)
    return code


def posit_round_value(value, n: int, es: int) -> Fraction:
    """The value posit_round(value, n, es) encodes."""
    return posit_decode(posit_round(value, n, es), n, es)


def posit_encode_exact(value, n: int, es: int) -> int:
    """Code of value, which must be exactly a posit<n, es> value (ValueError otherwise)."""
    x = Fraction(value)
    code = posit_round(x, n, es)
    if posit_decode(code, n, es) != x:
        raise ValueError(f"{x} is not exactly a posit<{n},{es}> value")
    return code


@lru_cache(maxsize=None)
def _values(n: int, es: int) -> tuple:
    vals = [posit_decode(c, n, es) for c in range(1 << n) if c != 1 << (n - 1)]
    vals.sort()
    return tuple(vals)


def posit_values(n: int, es: int) -> list:
    """All 2**n - 1 finite posit<n, es> values (zero once), ascending."""
    _check(n, es)
    if n > 24:
        raise ValueError("posit_values enumerates every code; n > 24 is too many")
    return list(_values(n, es))
