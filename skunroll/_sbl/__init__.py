"""Sparse Bayesian learning (automatic relevance determination) by exact EM
and covariance-free EM (CoFEM): one model (``sbl.py``) and clustered
multi-task models (``multitask.py``), over the block CG loop and Lanczos
quadrature of ``_krylov.py``."""
