"""The only Numba code of fpsim: pure functions on arrays and scalars, no argument checks."""
