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

The sparse-autoencoder encoders are entries of the same registry of another
``kind``: ``"pursuit"`` (matching pursuit unrolled for ``n_nonzero_coefs``
steps, Costa et al., NeurIPS 2025) and ``"shallow"`` (one layer,
``z = TopK(x D^T + b_enc)`` or ``ReLU(x D^T + b_enc)``, the baselines of that
paper). They have no step and no momentum; their kernels are in
``_kernels/_pursuit.py`` and ``_dense/network.py`` dispatches on ``kind``.

``"cd"`` (``kind="coordinate"``) is the convolutional family's solver of the
Gaussian lasso by locally greedy coordinate descent (Moreau, Oudre & Vayatis,
ICML 2018): no fixed depth and no momentum; it runs until no code would move
by more than a tolerance (``_kernels/_conv_cd.py``). Its kernels' gradient is
the one at its codes ("dec"): alternating minimisation, as in alphacsc.
Where events are sparse it costs a few updates per event instead of a
correlation of the whole signal per step.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Encoder:
    """An encoder of the unrolled networks.

    ``kind`` is ``"proximal"`` (ISTA, FISTA with ``accelerated``: the
    proximal-gradient recursion above), ``"pursuit"`` (matching pursuit),
    ``"coordinate"`` (coordinate descent to a tolerance, convolutional
    family only) or ``"shallow"`` (one layer; ``top_k`` keeps the ``n_nonzero_coefs``
    largest pre-activations, else ReLU). ``sparsity_steps``: the encoder takes
    ``n_nonzero_coefs`` (a number of steps or of kept atoms)."""

    name: str
    accelerated: bool = False
    kind: str = "proximal"
    top_k: bool = False

    @property
    def sparsity_steps(self):
        return self.kind == "pursuit" or self.top_k

    @property
    def autoencoder(self):
        """A sparse-autoencoder encoder (no step, a pre-bias, sparse codes)."""
        return self.kind in ("pursuit", "shallow")

    def momentum(self, n_unroll):
        """Momentum ``b_t`` of each of the ``n_unroll`` steps (float64)."""
        return fista_momentum(n_unroll, self.accelerated)


ENCODERS = {
    "ista": Encoder("ista", accelerated=False),
    "fista": Encoder("fista", accelerated=True),
    "mp": Encoder("mp", kind="pursuit"),
    "topk": Encoder("topk", kind="shallow", top_k=True),
    "relu": Encoder("relu", kind="shallow"),
    "cd": Encoder("cd", kind="coordinate"),
}

#: the encoders of the dense family (patches and vectors)
DENSE_ENCODERS = frozenset(n for n, e in ENCODERS.items() if e.kind != "coordinate")
#: the encoders of the convolutional family
CONV_ENCODERS = frozenset(("fista", "ista", "cd"))


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
