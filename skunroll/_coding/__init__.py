"""Sparse coding against a fixed dictionary: ``sparse_encode`` and
``UnrolledSparseCoder`` (exact lasso, ISTA/FISTA, the unrolled encoder, OMP)."""
