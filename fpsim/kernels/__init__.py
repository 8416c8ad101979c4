"""The only Numba code of fpsim: pure functions on arrays and scalars, no argument checks.

Vector width: on CPUs with AVX-512, LLVM's tuning for Intel server cores prefers 256-bit vectors;
fpsim's kernels are bound by vector instructions per element and run about 1.25x faster with
512-bit ones (benchmarks/bench_gemm.py).  So, on import and before Numba has compiled anything,
fpsim sets Numba's target features to the host's plus ``-prefer-256-bit``.  This is a process-wide
Numba setting (other Numba code of the process compiles with it too; results do not change, only
the instructions).  ``FPSIM_VECTOR_WIDTH=256`` in the environment, or ``NUMBA_CPU_FEATURES`` set
by the user, leaves Numba's default alone.
"""

import os


def _prefer_512_bit_vectors():
    if os.environ.get("FPSIM_VECTOR_WIDTH", "512") == "256" or "NUMBA_CPU_FEATURES" in os.environ:
        return
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features
    if config.CPU_FEATURES is not None:
        return
    features = get_host_cpu_features()
    if "+avx512f" in features.split(","):
        config.CPU_FEATURES = features + ",-prefer-256-bit"


_prefer_512_bit_vectors()
