"""Numba kernels of the rating core. Each takes plain null-free arrays and returns arrays;
beside each sits a pure-Python reference that is its test oracle and specification."""
