"""Numba kernels: GIL-free loops over arrays and scalars, never importing sklearn."""
