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
