"""Private dispatcher of the learned coders: chunks, threads, the kernel.

``forward_backward`` runs ``_kernels._learned.learned_chunk`` over fixed
chunks of samples in the package's thread pool (BLAS serial inside) and sums
per-chunk losses and gradients in chunk order, so that results do not depend
on ``n_jobs``. Nothing here validates input.
"""

from dataclasses import dataclass

import numpy as np

from .._kernels._learned import learned_chunk
from .._parallel import map_in_order

#: rows per kernel call; fixed, so that sums do not depend on n_jobs
CHUNK_ROWS = 128


@dataclass
class Result:
    """Summed losses over the samples, the codes, and (backward) the summed
    gradients with respect to the general weights, in float64."""

    data_loss: float
    penalty: float
    codes: np.ndarray
    gWx: np.ndarray = None
    gWz: np.ndarray = None
    gtheta: np.ndarray = None


def forward_backward(X, D, Wx, Wz, theta, alpha, backward=False, n_jobs=None):
    """Codes and summed lasso objective of the network ``(Wx, Wz, theta)`` on
    ``X``; with ``backward``, the summed gradients of the objective with
    respect to the three. The weights are cast to the dtype of ``X``."""
    dt = X.dtype
    X = np.ascontiguousarray(X)
    D = np.ascontiguousarray(D, dtype=dt)
    Wx = np.ascontiguousarray(Wx, dtype=dt)
    Wz = np.ascontiguousarray(Wz, dtype=dt)
    theta = np.ascontiguousarray(theta, dtype=dt)
    n, k = X.shape[0], D.shape[0]
    codes = np.zeros((n, k), dtype=dt)
    n_chunks = -(-n // CHUNK_ROWS)

    def run(c):
        sl = slice(c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n))
        losses = np.zeros(2)
        if backward:
            grads = (np.zeros_like(Wx), np.zeros_like(Wz), np.zeros_like(theta))
        else:  # unused, of the same types
            unused = np.zeros((1, 1, 1), dt)
            grads = (unused, unused, np.zeros((1, 1), dt))
        learned_chunk(
            X[sl], D, Wx, Wz, theta, dt.type(alpha), backward, codes[sl], *grads, losses
        )
        return losses, grads

    results = map_in_order(run, n_chunks, n_jobs)
    losses = np.sum([r[0] for r in results], axis=0)
    out = Result(float(losses[0]), float(losses[1]), codes)
    if backward:
        out.gWx, out.gWz, out.gtheta = (
            np.sum([r[1][i].astype(np.float64) for r in results], axis=0)
            for i in range(3)
        )
    return out
