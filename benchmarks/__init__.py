"""fpsim's benchmarks: each script runs alone (``python benchmarks/bench_gemm.py``), and
``python -m benchmarks`` runs them all into one table."""
