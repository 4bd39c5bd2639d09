"""Learned unrolled coders: the estimator (``coder.py``), its parametrisations
(``parametrizations.py``) and the dispatcher of its kernel (``network.py``)."""
