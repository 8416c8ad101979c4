import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests import the reference oracle as a module

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One Numba thread per pytest-xdist worker: the workers already use every core, and two
    # threads per worker on two cores make the many small parallel regions of a training step
    # wait on each other (the MLP preset runs took 3-10x longer).  Tests of thread counts set
    # their own.
    import numba

    numba.set_num_threads(1)


# Tests that start fresh Python processes run last: such a process compiles every kernel it uses
# unless Numba's on-disk cache (cache=True) already holds it, and by then the other tests have
# written most of the cache.  In a cold CI run of session 15 the benchmark suite's test took
# 354 s run early (57 s for the CUDA simulator's cases warm, 152 s cold).  The sort is stable:
# files keep their order among themselves.
RUN_LAST = ("test_benchmarks.py", "test_cuda.py", "test_notebooks.py", "test_threads.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: os.path.basename(str(item.fspath)) in RUN_LAST)
