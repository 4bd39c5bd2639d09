"""Sparse Bayesian learning (automatic relevance determination) by exact EM
and covariance-free EM (CoFEM)."""
