"""Convolutional lasso by locally greedy coordinate descent (LGCD).

The Gaussian convolutional encoder's problem,

    min_z 0.5 ||x - H z||^2 + sum_k lambda_k ||z_k||_1   (sign constraints, mask),

solved by exact coordinate updates. ``r = H^T (x - H z)`` is kept up to date:
one code entry ``z[k, i, j]`` at its optimum, given the others, is the soft
threshold of ``z[k, i, j] + r[k, i, j] / d_k`` at ``lambda_k / d_k``
(``d_k = ||h_k||^2``), and changing it by ``dz`` changes ``r`` by ``-dz``
times one column of ``H^T H`` (the kernels' Gram, ``K (2 kh - 1) (2 kw - 1)``
entries). Where the codes are sparse (spikes, events) a pass costs a few
updates per event, not a correlation of the whole signal.

Locally greedy (Moreau, Oudre & Vayatis, ICML 2018, "DICOD"; Moreau &
Gramfort, IEEE TPAMI 2022, "DiCoDiLe"): every row of code positions is cut
into segments of ``2 kw`` positions; a visit to a segment updates the entry
of the segment that moves most, and marks the segments that update reached
for another visit. A pass visits the marked segments in order; the solver
stops when no entry of any segment would move by more than ``tol`` (then no
segment is marked), or after ``max_passes`` passes.
"""

import numpy as np
from numba import njit

from ._blas import copy_into
from ._conv import (
    _gram_apply_sparse,
    _gram_scatter,
    analysis,
    gram_finish,
    kernel_gram,
    prox_entry,
)


@njit(nogil=True, cache=True)
def cd_sample(x, H, alphas, signs, mask, use_mask, tol, max_passes, mode, z_out,
              grad, losses, z_init, warm):  # fmt: skip
    """Encode one signal ``x`` ``(C, h, w)`` to ``z_out`` by LGCD, from
    ``z_init`` when ``warm`` else from zero. ``alphas`` are the l1 weights
    ``lambda_k``; ``tol`` is the largest code change at which a segment is
    left alone. ``losses`` receives the data loss and the penalty; for "dec"
    ``grad`` accumulates the kernel gradient at the codes. Returns the
    number of passes run (``max_passes`` if it stopped there; a converged
    run ends with a pass that moves nothing, so fewer)."""
    n_kernels = H.shape[0]
    F = np.ascontiguousarray(kernel_gram(H)[:, :, ::-1, ::-1])
    eh = (F.shape[2] - 1) // 2
    ew = (F.shape[3] - 1) // 2
    K, p1, p2 = z_out.shape
    b = np.empty(z_out.shape, dtype=z_out.dtype)
    analysis(x, H, b)
    z = np.zeros(z_out.shape)
    if warm:
        copy_into(z_init, z)
    c = np.zeros(z_out.shape)  # H^T H z
    _gram_apply_sparse(F, z, c)
    r = b - c  # H^T (x - H z), float64
    inv = np.empty(n_kernels)
    th = np.empty(n_kernels)
    for k in range(n_kernels):
        d = F[k, k, eh, ew]
        inv[k] = 1.0 / d if d > 0.0 else 0.0
        th[k] = alphas[k] * inv[k]
    seg = max(1, 2 * (ew + 1))
    n_seg = (p2 + seg - 1) // seg
    marked = np.ones((p1, n_seg), dtype=np.bool_)
    passes = 0
    while passes < max_passes:
        passes += 1
        moved = False
        for i in range(p1):
            for s in range(n_seg):
                if not marked[i, s]:
                    continue
                marked[i, s] = False
                lo = s * seg
                hi = min(p2, lo + seg)
                best = tol
                bk = -1
                bj = 0
                bz = 0.0
                for k in range(K):
                    if inv[k] == 0.0:
                        continue
                    zk = z[k, i]
                    rk = r[k, i]
                    for j in range(lo, hi):
                        allowed = not use_mask or mask[k, i, j]
                        zo = prox_entry(
                            zk[j] + rk[j] * inv[k], th[k], signs[k], allowed
                        )
                        d = abs(zo - zk[j])
                        if d > best:
                            best = d
                            bk = k
                            bj = j
                            bz = zo
                if bk < 0:
                    continue
                moved = True
                dz = bz - z[bk, i, bj]
                z[bk, i, bj] = bz
                _gram_scatter(F, bk, i, bj, -dz, r)
                # the segments the update reached (rows i +- (kh - 1),
                # positions bj +- (kw - 1)) are visited again
                for i2 in range(max(0, i - eh), min(p1, i + eh + 1)):
                    for s2 in range(
                        max(0, bj - ew) // seg, min(p2 - 1, bj + ew) // seg + 1
                    ):
                        marked[i2, s2] = True
        if not moved:
            break
    copy_into(z, z_out)
    gram_finish(x, H, z_out, b, b - r, alphas, mode, losses, grad)
    return passes
