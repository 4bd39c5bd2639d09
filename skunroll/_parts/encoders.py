"""The encoder axis: the iterative algorithm an unrolled network runs.

An encoder of depth ``T`` runs ``T`` proximal-gradient steps from ``z_0 = 0``
(Tolooshams & Ba, TMLR 2022, eq. 3; Beck & Teboulle 2009 for the momentum):

    y_t = z_t + b_t (z_t - z_{t-1}),   z_{t+1} = P(y_t + a (x - f(y_t D)) D^T)

with the step ``a = 1 / (c L)`` (``L = ||D||_2^2``, ``c`` the likelihood's
curvature bound) and ``P`` the prior's proximal map. ISTA and FISTA differ
only by the momentum ``b_t``. ``ENCODERS`` is the registry: an encoder is an
entry here; the kernels that run it take its momentum sequence.

The networks start the momentum at the second step (``b_1 > 0``), one step
earlier than Beck & Teboulle's solver (``sparse_encode(algorithm="fista")``,
whose first non-zero momentum is ``b_2``); every fixed-depth forward pass of
the package (``sparse_encode(algorithm="unrolled")``,
``UnrolledSparseCoder``, the trained estimators' ``transform``) is the
networks' one.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Encoder:
    """An unrolled proximal-gradient encoder (``accelerated``: FISTA's
    momentum, else ISTA)."""

    name: str
    accelerated: bool

    def momentum(self, n_unroll):
        """Momentum ``b_t`` of each of the ``n_unroll`` steps (float64)."""
        return fista_momentum(n_unroll, self.accelerated)


ENCODERS = {
    "ista": Encoder("ista", accelerated=False),
    "fista": Encoder("fista", accelerated=True),
}


def fista_momentum(n_unroll, accelerated):
    """Momentum ``b_t`` of every step (zeros for ISTA); independent of ``D``."""
    betas = np.zeros(n_unroll)
    if accelerated:
        t = 1.0
        for i in range(n_unroll):
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            betas[i] = (t - 1.0) / t_next
            t = t_next
    return betas


def encoder_step(lipschitz, curvature=1.0):
    """The encoder step ``a = 1 / (c L)``, with ``L = ||D||_2^2`` and ``c`` the
    likelihood's curvature bound (1 for the Gaussian likelihood)."""
    return 1.0 / (curvature * lipschitz)
