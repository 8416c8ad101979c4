"""device="cuda": every GPU kernel (fpsim/kernels/cuda) against the CPU, bit for bit, under
Numba's CUDA simulator on small shapes (always), and on a real GPU where one is present."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fpsim
from fpsim.kernels import cuda as kcuda

HERE = os.path.dirname(__file__)


def run_cases(simulator):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, os.path.join(HERE, "cuda_cases.py")], env=env,
                          capture_output=True, text=True, timeout=1200)


def test_gpu_kernels_equal_the_cpu_under_the_cuda_simulator():
    r = run_cases(simulator=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DIFFERENT" not in r.stdout and "89 cases equal" in r.stdout


def _real_gpu():
    code = "from numba import cuda; print(cuda.is_available())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return r.stdout.strip() == "True"


def test_gpu_kernels_equal_the_cpu_on_a_real_gpu():
    if not _real_gpu():
        pytest.skip("no CUDA GPU here (numba.cuda.is_available() is False): the GPU kernels "
                    "ran under the simulator only")
    r = run_cases(simulator=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "89 cases equal" in r.stdout


def test_device_argument_is_checked():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'cuda'\), got 'gpu'"):
        fpsim.quantize(x, "e4m3", device="gpu")
    with pytest.raises(ValueError, match="device must be one of"):
        fpsim.gemm(x[None], x[:, None], device="tpu")
    if not kcuda.available():
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            fpsim.conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 2, 2), np.float32),
                         device="cuda")
