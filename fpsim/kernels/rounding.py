"""Rounding a float64 into any FloatFormat, encoding and decoding codes, and the counter-based RNG.

Exactness: every input (float16/float32 are widened to float64 exactly) is split into an integer
significand ``sig`` (53 bits, leading bit set) and an exponent ``E`` with ``x = sig * 2**(E-52)``.
Rounding happens on those integers; the result ``kept * 2**qe`` is assembled by one float64 multiply
that is exact because every value of the format is a float64 (the format limits guarantee it).

Rounding-mode codes (``MODE``) and specials codes (``fpsim.formats.SPECIALS_CODE``) are the ints
passed from ops.py.  Stochastic modes take a 64-bit random word ``u`` per element:
``sr`` (exact): with ``rem`` the ``shift`` discarded bits, round away from zero iff
``(u >> (64-shift)) + rem >= 2**shift`` (probability exactly ``rem / 2**shift``) whenever the
reduced fraction fits 62 bits, and by further words derived from ``u`` beyond (``_sr_up_small``);
``sr`` with ``r`` bits: ``f`` = the ``r`` bits just below the kept LSB (truncated), ``R = u >> (64-r)``,
round away iff ``R + f >= 2**r`` (probability ``f / 2**r``), the add-then-truncate of hardware.
"""

import numpy as np
from numba import njit, prange

from .bits import bits_f64, bits_float, f64_bits, float_bits

MODE = {"rne": 0, "rna": 1, "rtz": 2, "rup": 3, "rdn": 4, "rto": 5, "sr": 6, "sr_bits": 7}
RNE, RNA, RTZ, RUP, RDN, RTO, SR, SRB = range(8)
IEEE, FN, FNUZ, NONE = range(4)

ABS = np.int64(0x7FFFFFFFFFFFFFFF)
EXP_MASK = np.int64(0x7FF0000000000000)
MANT = np.int64(0x000FFFFFFFFFFFFF)
IMPL = np.int64(1 << 52)
TWO64 = float(2.0 ** 64)
CHUNK = 16384  # elements per parallel task; the RNG is keyed by the global index, not the task

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
GOLDEN2 = np.uint64(0xD1B54A32D192ED03)


# --- counter-based RNG (SplitMix64 finaliser over seed and element index) -----------------------
@njit(cache=True, inline="always")
def mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def seed_key(seed):
    """The 64-bit stream key of a seed."""
    return mix64(np.uint64(seed) ^ np.uint64(0x5851F42D4C957F2D))


@njit(cache=True, inline="always")
def random_word(key, idx):
    """The 64-bit random word of element ``idx`` of stream ``key``; depends on nothing else."""
    return mix64(np.uint64(key) + (np.uint64(idx) + np.uint64(1)) * GOLDEN)


@njit(cache=True, parallel=True)
def random_words(key, start, out):
    """Fill ``out`` with the random words of elements ``start .. start+len(out)-1``."""
    for i in prange(out.size):
        out[i] = random_word(key, start + i)


@njit(cache=True, inline="always")
def chunk_span(c, n):
    """(first, end) element of parallel chunk ``c`` of ``n`` elements, as uint64.

    Element loops index with unsigned integers (``for i in range(first, end)``, or
    ``x[np.uint64(i)]``): a signed index makes Numba select ``i + len`` for negative ``i``, and
    where LLVM cannot prove ``i >= 0`` (a loop from a run's first element) it vectorises the
    loop with gathers and scatters - measured 3-7x slower than contiguous vector loads on
    quantize's float32 lanes.  Arithmetic on such an ``i`` must stay unsigned (uint64 mixed with
    int64 is float64 in Numba); the loops here only index with it and pass it to
    :func:`random_word`."""
    return np.uint64(c * CHUNK), np.uint64(min(n, (c + 1) * CHUNK))


# --- small exact helpers ------------------------------------------------------------------------
@njit(cache=True, inline="always")
def pow2(e):
    """2.0**e for -1074 <= e <= 1023, exactly (subnormal powers included)."""
    if e >= -1022:
        return bits_f64(np.int64(e + 1023) << np.int64(52))
    return bits_f64(np.int64(1) << np.int64(e + 1074))


@njit(cache=True, inline="always")
def split(a):
    """``a`` = bits of a finite nonzero |x|; returns (E, sig) with |x| = sig * 2**(E-52), sig >= 2**52."""
    e11 = a >> np.int64(52)
    if e11 == 0:  # float64 subnormal: scale by 2**64 (exact) to normalise
        a = f64_bits(bits_f64(a) * TWO64)
        e = (a >> np.int64(52)) - np.int64(1023 + 64)
    else:
        e = e11 - np.int64(1023)
    return e, (a & MANT) | IMPL


@njit(cache=True)
def _sr_up_small(sig, shift, u):
    """Exact stochastic decision when all of sig < 2**53 lies more than 62 bits below the quantum:
    True with probability sig / 2**shift.

    Trailing zeros are stripped first, so whenever the reduced fraction has at most 62 bits the
    decision is the same top-bits rule as the main path (``u / 2**64 >= 1 - fraction``).  Beyond
    that, R uniform on [0, 2**shift) is below sig iff its top shift-53 bits are zero and its low 53
    bits are below sig; the top bits are drawn 64 at a time from words derived from ``u``.
    """
    while (sig & 1) == 0:
        sig >>= 1
        shift -= 1
    if shift <= 62:
        return ((np.int64(u >> np.uint64(64 - shift)) + sig) >> shift) != 0
    return compare_uniform(sig, shift, u, GOLDEN2) < 0


@njit(cache=True)
def compare_uniform(sig, shift, u, salt):
    """Compare R, uniform on [0, 2**shift) (shift > 53), with sig < 2**53: -1 if R < sig, 0 if
    equal, 1 if greater.  R's top shift-53 bits come 64 at a time from ``u`` and then from the
    words ``mix64(u + k * salt)``, k = 1, 2, ...; its low 53 bits are the top of the last word."""
    t = shift - 53
    w = u
    k = np.uint64(1)
    while t > 0:
        take = min(t, 64)
        if (w >> np.uint64(64 - take)) != np.uint64(0):
            return 1
        t -= take
        w = mix64(u + k * salt)
        k += np.uint64(1)
    r = np.int64(w >> np.uint64(11))
    return -1 if r < sig else (0 if r == sig else 1)


@njit(cache=True, inline="always")
def signed_nan(neg):
    """A quiet NaN with the given sign bit (ml_dtypes keeps the sign where the format can)."""
    return bits_f64(np.int64(-0x8000000000000) if neg else np.int64(0x7FF8000000000000))


# --- the rounding core --------------------------------------------------------------------------
@njit(cache=True, inline="always")
def round_f64(x, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits):
    """Round float64 ``x`` once into the format; returns the result as a float64."""
    b = f64_bits(x)
    neg = b < 0
    a = b & ABS
    if a >= EXP_MASK:
        if a > EXP_MASK:  # NaN: the quiet NaN of zero payload, sign kept (fpsim's one rule)
            if spec == NONE:
                return 0.0 if neg else -0.0
            return signed_nan(neg)
        if saturate or spec == NONE:  # +-Inf
            return -maxv if neg else maxv
        if spec == IEEE:
            return x
        return signed_nan(neg)
    if a == 0:
        return 0.0 if spec == FNUZ else x

    e, sig = split(a)
    qe = max(e, emin) - man_bits            # exponent of the result's quantum
    shift = qe - e + 52                     # bits of sig below that quantum (>= 0)
    sh = min(shift, 62)                     # 62: keeps half = 2**(sh-1) positive; sig < 2**53
    kept = sig >> sh
    rem = sig & ((np.int64(1) << sh) - 1)
    half = (np.int64(1) << sh) >> 1
    inexact = rem != 0
    up = False
    if mode == RNE:
        up = inexact and (rem > half or (rem == half and (kept & 1) == 1))
    elif mode == RNA:
        up = inexact and rem >= half
    elif mode == RUP:
        up = inexact and not neg
    elif mode == RDN:
        up = inexact and neg
    elif mode == RTO:
        if inexact:
            kept |= 1
    elif mode == SR:
        if shift <= 62:
            r = np.int64(u >> np.uint64(64 - max(sh, 1)))
            up = ((r + rem) >> sh) != 0 and inexact
        else:
            up = _sr_up_small(sig, shift, u)
    elif mode == SRB:
        d = shift - r_bits
        if d >= 63:
            f = np.int64(0)
        elif d >= 0:
            f = rem >> d
        else:
            f = rem << (-d)
        r = np.int64(u >> np.uint64(64 - r_bits))
        up = ((r + f) >> r_bits) != 0
    if up:
        kept += 1
    return finish(kept, qe, neg, maxv, min_normal, spec, saturate, subnormals, mode)


@njit(cache=True, inline="always")
def finish(kept, qe, neg, maxv, min_normal, spec, saturate, subnormals, mode):
    """The signed value ``kept * 2**qe`` after rounding, with the format's overflow, FTZ and
    signed-zero rules (``mode`` decides whether overflow goes to the largest finite value)."""
    mag = np.float64(kept) * pow2(qe)       # exact: a value of the format (or > max: overflow)
    if mag > maxv:
        to_max = (saturate or spec == NONE or mode == RTZ or mode == RTO
                  or (mode == RUP and neg) or (mode == RDN and not neg))
        if to_max:
            mag = maxv
        elif spec == IEEE:
            mag = np.inf
        else:
            return signed_nan(neg)
    if not subnormals and mag < min_normal:
        mag = 0.0
    if neg and not (spec == FNUZ and mag == 0.0):
        return -mag
    return mag


@njit(cache=True, inline="always")
def encode_f64(v, man_bits, exp_bits, emin, spec):
    """Code of a float64 ``v`` that is already a value of the format (or NaN/Inf it can hold)."""
    signbit = np.int64(1) << np.int64(exp_bits + man_bits)
    b = f64_bits(v)
    s = signbit if b < 0 else np.int64(0)
    a = b & ABS
    expones = (np.int64(1) << exp_bits) - 1
    if a > EXP_MASK:  # NaN: the canonical quiet NaN of the policy (ml_dtypes' choice)
        if spec == IEEE:
            return s | (expones << man_bits) | (np.int64(1) << np.int64(man_bits - 1))
        if spec == FN:
            return s | (signbit - 1)
        return signbit
    if a == EXP_MASK:
        return s | (expones << man_bits)
    if a == 0:
        return np.int64(0) if spec == FNUZ else s
    e, sig = split(a)
    if e >= emin:
        frac = (sig >> np.int64(52 - man_bits)) & ((np.int64(1) << man_bits) - 1)
        return s | ((e - emin + 1) << man_bits) | frac
    return s | (sig >> (emin - man_bits - e + 52))


@njit(cache=True, inline="always")
def decode_code(c, man_bits, exp_bits, bias, spec, subnormals):
    """Value (float64) of code ``c`` (int64 holding the code's bits)."""
    nb = np.int64(exp_bits + man_bits)
    neg = ((c >> nb) & 1) == 1
    mag = c & ((np.int64(1) << nb) - 1)
    ef = mag >> man_bits
    mf = mag & ((np.int64(1) << man_bits) - 1)
    expones = (np.int64(1) << exp_bits) - 1
    if spec == IEEE and ef == expones:
        v = np.inf if mf == 0 else np.nan
    elif spec == FN and mag == (np.int64(1) << nb) - 1:
        v = np.nan
    elif spec == FNUZ and neg and mag == 0:
        return np.nan
    elif ef == 0:
        v = np.float64(mf) * pow2(1 - bias - man_bits) if subnormals else 0.0
    else:
        v = np.float64((np.int64(1) << man_bits) | mf) * pow2(ef - bias - man_bits)
    return -v if neg else v


# --- branch-free core for the common case ------------------------------------------------------
# Valid when man_bits <= 50 (kept <= 2**(man_bits+1) after a carry, and the 2**52 magic-number
# conversion needs kept < 2**52) and emin - man_bits >= -1022 (every quantum is a normal power of
# two, so the result is assembled by one multiply).  All decisions are selects, so LLVM vectorises
# the loop.  float64 subnormal inputs are read as sig = fraction field (no implicit bit) at
# exponent -1022, the value they have: every decision below works on unnormalised integers, which
# matters where half a quantum (2**-1023 when emin - man_bits = -1022) is itself subnormal.
MAGIC = np.int64(0x4330000000000000)   # bits of 2.0**52
TWO52 = 4503599627370496.0


def supports(man_bits, emin):
    """Whether :func:`round_fast` is exact for a format (the proof is the comment above)."""
    return man_bits <= 50 and emin - man_bits >= -1022


@njit(cache=True, inline="always")
def sel(c, a, b):
    """``a if c else b`` without a branch (LLVM emits a select)."""
    return a if c else b


@njit(cache=True, inline="always")
def round_fast(x, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits):
    """Same result as :func:`round_f64` (fast-path formats), plus a flag: 1 where an exact-'sr'
    decision needs more than 62 random bits and the caller must use :func:`round_f64`."""
    b = f64_bits(x)
    neg = b < 0
    a = b & ABS
    e11 = a >> np.int64(52)
    e = max(e11, np.int64(1)) - np.int64(1023)
    sig = (a & MANT) | sel(e11 != 0, IMPL, np.int64(0))
    qe = max(e, emin) - man_bits
    shift_full = qe - e + 52
    shift = min(shift_full, 62)
    kept = sig >> shift
    rem = sig & ((np.int64(1) << shift) - 1)
    half = (np.int64(1) << shift) >> 1
    inexact = rem != 0
    odd = (kept & 1) == 1
    # exact stochastic: top `shift` bits of u plus the remainder carry into the kept LSB
    r_sr = np.int64(u >> np.uint64(64 - max(shift, 1)))
    up_sr = (((r_sr + rem) >> shift) != 0) & inexact
    # r-bit stochastic: the r bits below the LSB, truncated, plus r random bits
    d = shift_full - r_bits
    f_r = sel(d >= 63, 0, sel(d >= 0, rem >> min(max(d, 0), 62), rem << min(max(-d, 0), 62)))
    r_r = np.int64(u >> np.uint64(64 - r_bits if r_bits > 0 else 63))
    up_srb = ((r_r + f_r) >> r_bits) != 0
    up = ((mode == RNE) & inexact & ((rem > half) | ((rem == half) & odd))) \
        | ((mode == RNA) & inexact & (rem >= half)) \
        | ((mode == RUP) & inexact & (not neg)) | ((mode == RDN) & inexact & neg) \
        | ((mode == SR) & up_sr) | ((mode == SRB) & up_srb)
    kept = (kept + np.int64(up)) | np.int64((mode == RTO) & inexact)
    mag = (bits_f64(kept | MAGIC) - TWO52) * bits_f64(np.int64(qe + 1023) << np.int64(52))
    to_max = saturate | (spec == NONE) | (mode == RTZ) | (mode == RTO) | ((mode == RUP) & neg) \
        | ((mode == RDN) & (not neg))
    over = np.inf if spec == IEEE else np.nan
    mag = sel(mag > maxv, sel(to_max, maxv, over), mag)
    mag = sel(((not subnormals)) & (mag < min_normal), 0.0, mag)
    mag = sel(a == 0, 0.0, mag)
    # specials of the input
    inf_out = sel(saturate | (spec == NONE), maxv, sel(spec == IEEE, np.inf, np.nan))
    mag = sel(a == EXP_MASK, inf_out, mag)
    is_nan = a > EXP_MASK
    mag = sel(is_nan, sel(spec == NONE, 0.0, np.nan), mag)
    # sign: NaN keeps it, 'none' turns NaN into the zero of the other sign, fnuz has no -0
    sgn = (is_nan & (spec == NONE)) ^ neg & (not ((spec == FNUZ) & (mag == 0.0)))
    res = bits_f64(f64_bits(mag) | (np.int64(sgn) << np.int64(63)))
    slow = (mode == SR) & (shift_full > 62) & inexact & (a < EXP_MASK)
    return res, slow


@njit(cache=True)
def fast_chunk(x, out, lo, hi, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
               mode, r_bits):
    """out[i] = round(x[i]) for lo <= i < hi through :func:`round_fast`, deterministic modes.
    A plain function (not inlined into the parallel loop): Numba compiles it once, which keeps
    the cold start short (issue 12), and small arrays call it directly."""
    for i in range(np.uint64(lo), np.uint64(hi)):
        r, s = round_fast(np.float64(x[i]), np.uint64(0), man_bits, emin, maxv, min_normal,
                          spec, saturate, subnormals, mode, r_bits)
        out[i] = r


@njit(cache=True)
def fast_chunk_sr(x, out, lo, hi, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
                  mode, r_bits, key):
    """As :func:`fast_chunk` for the stochastic modes: the seeded word of each element, and the
    exact path (:func:`round_f64`) for the elements whose 'sr' decision needs more than 62 bits."""
    nslow = 0
    for i in range(np.uint64(lo), np.uint64(hi)):
        r, s = round_fast(np.float64(x[i]), random_word(key, i), man_bits, emin, maxv,
                          min_normal, spec, saturate, subnormals, mode, r_bits)
        out[i] = r
        nslow += s
    if nslow > 0:
        for i in range(np.uint64(lo), np.uint64(hi)):
            r, s = round_fast(np.float64(x[i]), random_word(key, i), man_bits, emin, maxv,
                              min_normal, spec, saturate, subnormals, mode, r_bits)
            if s:
                out[i] = round_f64_call(np.float64(x[i]), random_word(key, i), man_bits, emin,
                                        maxv, min_normal, spec, saturate, subnormals, mode,
                                        r_bits)


@njit(cache=True)
def round_f64_call(x, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
                   r_bits):
    """:func:`round_f64` as a called (not inlined) function, for rare slow paths."""
    return round_f64(x, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
                     r_bits)


@njit(cache=True, parallel=True)
def quantize_fast(x, out, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
                  r_bits):
    """out[i] = round(x[i]) through :func:`round_fast`, deterministic modes, chunks in parallel."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        fast_chunk(x, out, c * CHUNK, min(n, (c + 1) * CHUNK), man_bits, emin, maxv, min_normal,
                   spec, saturate, subnormals, mode, r_bits)


@njit(cache=True, parallel=True)
def quantize_fast_sr(x, out, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
                     r_bits, key):
    """As :func:`quantize_fast` for the stochastic modes (seeded words)."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        fast_chunk_sr(x, out, c * CHUNK, min(n, (c + 1) * CHUNK), man_bits, emin, maxv,
                      min_normal, spec, saturate, subnormals, mode, r_bits, key)


# --- nearest-even in the input's own lanes -------------------------------------------------------
def lane_supports(man_bits, emin, emax, lanes):
    """Whether :func:`lane_nearest` rounds exactly into a format (IEEE, "fn" or "none" specials,
    with subnormals, nearest-even) in float32 (``lanes`` 32) or float64 lanes: the rounding constant
    c = 2**(e + frac - man_bits) of every binade e from emin to emax + 1 is a normal lane value
    (e + frac - man_bits + 1 <= the lane's emax), emin is normal in the lane, the format's
    quantum 2**(emin - man_bits) is a lane value, and man_bits <= frac - 2."""
    frac, lane_emin, lane_emax = (23, -126, 127) if lanes == 32 else (52, -1022, 1023)
    return man_bits <= frac - 2 and emin >= lane_emin and emin - man_bits >= lane_emin - frac \
        and emax + 2 + frac - man_bits <= lane_emax


@njit(cache=True, inline="always")
def lane_nearest(x, lq):
    """x (float32 or float64) rounded to nearest-even into a format, in x's own type.

    ``c = +-2**(e + frac - man_bits)`` with x's sign (e: x's exponent, clamped to the format's
    [emin, emax + 1]) has the format's quantum at e as its lane spacing, so ``(x + c) - c`` is x
    rounded there by the hardware's nearest-even, exactly (x is the exact input, and |x| <
    2**(e+1) keeps x + c in c's binade); x's sign is put back on a zero.  A result above the
    format's largest value (also every x beyond emax + 1, and +-Inf, for which x + c is Inf)
    becomes ``over`` (Inf, NaN or the largest value) with x's sign; NaN becomes ``qnan`` with its
    sign bit flipped where x's is set: the quiet NaN with x's sign, or, for a format without NaN
    ("none"), ``qnan = -0.0``: the zero of the other sign, as :func:`round_f64` does.  ``lq``
    from quantize.lane_constants."""
    signmask, expmask, emin_field, emax_field, shift_field, maxv, over, qnan = lq
    ity = type(signmask)
    b = float_bits(x)
    sgn = ity(b & signmask)
    ef = min(max(ity(b & expmask), emin_field), emax_field)
    c = bits_float(ity(ity(ef + shift_field) | sgn))
    y = bits_float(ity(float_bits((x + c) - c) | sgn))
    y = sel(abs(y) > maxv, bits_float(ity(float_bits(over) | sgn)), y)
    return sel(x != x, bits_float(ity(float_bits(qnan) ^ sgn)), y)


@njit(cache=True)
def lane_chunk(x, out, lo, hi, lq):
    """out[i] = lane_nearest(x[i]) for lo <= i < hi (vectorised)."""
    for i in range(np.uint64(lo), np.uint64(hi)):
        out[i] = lane_nearest(x[i], lq)


@njit(cache=True, parallel=True)
def quantize_lanes(x, out, lq):
    """out = lane_nearest(x), chunks in parallel."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        lane_chunk(x, out, c * CHUNK, min(n, (c + 1) * CHUNK), lq)


# --- array kernels (1-D contiguous; ops.py flattens and restores the shape) ---------------------
@njit(cache=True, inline="always")
def element_word(rand, key, i, stochastic):
    """Random word of element i: the given word if ``rand`` is non-empty, else the seeded one."""
    if rand.size > 0:
        return rand[i]
    if stochastic:
        return random_word(key, i)
    return np.uint64(0)


@njit(cache=True, parallel=True)
def quantize_array(x, out, rand, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
                   mode, r_bits, key):
    """out[i] = round(x[i]); stochastic words from ``rand`` if non-empty, else from (key, i)."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            out[i] = round_f64(np.float64(x[i]), u, man_bits, emin, maxv, min_normal, spec,
                               saturate, subnormals, mode, r_bits)


@njit(cache=True, parallel=True)
def encode_array(x, out, rand, man_bits, exp_bits, emin, maxv, min_normal, spec, saturate,
                 subnormals, mode, r_bits, key):
    """out[i] = code(round(x[i])), same rounding as :func:`quantize_array`."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            v = round_f64(np.float64(x[i]), u, man_bits, emin, maxv, min_normal, spec,
                          saturate, subnormals, mode, r_bits)
            out[i] = encode_f64(v, man_bits, exp_bits, emin, spec)


@njit(cache=True, parallel=True)
def decode_array(codes, out, man_bits, exp_bits, bias, spec, subnormals):
    """out[i] = value of codes[i]."""
    n = codes.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            out[i] = decode_code(np.int64(codes[i]), man_bits, exp_bits, bias, spec, subnormals)


@njit(cache=True)
def table_chunk(codes, out, lo, hi, table):
    """out[i] = table[codes[i]] for lo <= i < hi (1-D; unsigned codes index the table)."""
    for i in range(np.uint64(lo), np.uint64(hi)):
        out[i] = table[codes[i]]


@njit(cache=True, parallel=True)
def table_decode(codes, out, table):
    """out[i] = table[codes[i]], chunks in parallel: codes to values through a lookup table
    held in cache (numpy's fancy indexing takes about 5x as long per element)."""
    n = codes.size
    for c in prange((n + CHUNK - 1) // CHUNK):      # int64 bounds, as by_size's small call
        table_chunk(codes, out, c * CHUNK, min(n, (c + 1) * CHUNK), table)


@njit(cache=True)
def positive_nans(flat):
    """Every NaN of the 1-D array ``flat`` becomes +NaN of zero payload (quantize.positive_nans,
    in one pass without temporaries)."""
    for i in range(flat.size):
        if flat[i] != flat[i]:
            flat[i] = np.nan
