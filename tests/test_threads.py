"""Results do not depend on the thread count: every parallel kernel, 1 thread against 2.

The suite itself runs Numba with one thread per pytest-xdist worker (conftest.py), so no kernel
would otherwise run multi-threaded here.  Numba sizes its thread pool when it is imported
(``NUMBA_NUM_THREADS``), so the comparison runs tests/thread_cases.py in two fresh processes,
one with NUMBA_NUM_THREADS=1 and one with NUMBA_NUM_THREADS=2 (2 even on a one-core machine),
and compares the SHA-256 of every result, case by case.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "thread_cases.py")


def _run(threads):
    env = {k: v for k, v in os.environ.items()
           if k != "PYTEST_XDIST_WORKER" and not k.startswith("NUMBA_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = str(threads)
    # cold Numba cache: the first child compiles every kernel it calls (minutes on a loaded
    # two-core machine); the second finds them in the on-disk cache
    proc = subprocess.run([sys.executable, SCRIPT], env=env, cwd=HERE, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    header, *lines = proc.stdout.splitlines()
    word, active, pool, layer = header.split()
    assert word == "threads"
    return int(active), int(pool), layer, dict(line.split(" ", 1) for line in lines), len(lines)


def test_every_parallel_kernel_gives_the_same_bits_on_1_and_2_threads():
    one_active, one_pool, _, one, n_one = _run(1)
    two_active, two_pool, layer, two, n_two = _run(2)
    assert (one_active, one_pool) == (1, 1)
    assert (two_active, two_pool) == (2, 2), f"the second child ran {two_active} threads ({layer})"
    assert n_one == len(one) and n_two == len(two), "case names must be unique"
    assert len(one) >= 80 and one.keys() == two.keys()
    differ = [case for case in one if one[case] != two[case]]
    assert not differ, f"results differ between 1 and 2 threads: {differ}"
