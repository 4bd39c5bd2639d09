"""Forward and hand-written backward pass of a learned unrolled coder.

Every parametrisation of :class:`skunroll.LearnedSparseCoder` (SLISTA's
steps, ALISTA, LISTA-CP, LISTA) is, layer by layer, the general LISTA form
(atoms as rows of ``D``, samples as rows of ``X``)

    u_t = x Wx_t + z_t Wz_t,   z_{t+1} = ST(u_t, theta_t),   z_0 = 0

with ``Wx_t`` (n_features, n_components), ``Wz_t`` (n_components,
n_components) and one threshold per atom ``theta_t``; ``ST(u, th) =
sign(u) max(|u| - th, 0)``. ISTA is ``Wx_t = D^T / L``, ``Wz_t = I - D D^T /
L``, ``theta_t = alpha / L``. The loss of a sample is the lasso objective of
the output, ``0.5 ||x - z_T D||^2 + alpha ||z_T||_1``. Its gradients with
respect to the per-layer weights, by reverse-mode differentiation written
out by hand, with ``g = dL/dz_{t+1}``:

    g_T      = (z_T D - x) D^T + alpha sign(z_T)
    s_t      = 1[|u_t| > theta_t]                (ST's derivative in u)
    h_t      = g * s_t                           (dL/du_t)
    dtheta_t = - sum_rows g * sign(u_t) * s_t
    dWx_t    = x^T h_t,   dWz_t = z_t^T h_t,   dL/dz_t = h_t Wz_t^T.

The parametrisations pull these back to their own parameters in Python
(``skunroll/_learned/parametrizations.py``). The chunk moves through the
layers together, each a BLAS product, on C-ordered arrays only.
"""

import numpy as np
from numba import njit

from ._blas import copy_into
from ._priors import shrink


@njit(nogil=True, cache=True)
def learned_chunk(X, D, Wx, Wz, theta, alpha, backward, Z, gWx, gWz, gtheta, losses):
    """The forward pass of one chunk, and with ``backward`` its gradients.

    ``X`` (n, m), ``D`` (k, m), ``Wx`` (T, m, k), ``Wz`` (T, k, k), ``theta``
    (T, k) and ``Z`` (n, k, the codes on exit) share one dtype. ``losses``
    (2,) gets the summed data term ``0.5 ||x - z_T D||^2`` and penalty
    ``alpha ||z_T||_1`` added; with ``backward`` the summed gradients are
    added to ``gWx``, ``gWz`` and ``gtheta`` (the shapes of the weights).
    """
    n, m = X.shape
    n_layers = Wx.shape[0]
    k = Wx.shape[2]
    dt = X.dtype
    # the backward pass needs every u_t and z_t; the forward pass two of each
    Us = np.empty((n_layers if backward else 1, n, k), dtype=dt)
    Zs = np.zeros((n_layers + 1 if backward else 2, n, k), dtype=dt)
    tmp = np.empty((n, k), dtype=dt)
    for t in range(n_layers):
        U = Us[t if backward else 0]
        Z_t = Zs[t if backward else t % 2]
        Z_next = Zs[t + 1 if backward else (t + 1) % 2]
        np.dot(X, Wx[t], U)
        if t > 0:  # z_0 = 0
            np.dot(Z_t, Wz[t], tmp)
            U += tmp
        th = theta[t]
        for i in range(n):
            for j in range(k):
                Z_next[i, j] = shrink(U[i, j], th[j], 0)
    copy_into(Zs[n_layers if backward else n_layers % 2], Z)
    R = np.empty((n, m), dtype=dt)
    np.dot(Z, D, R)
    data = 0.0
    for i in range(n):
        for f in range(m):
            R[i, f] -= X[i, f]
            data += 0.5 * R[i, f] * R[i, f]
    penalty = 0.0
    for i in range(n):
        for j in range(k):
            penalty += abs(Z[i, j])
    losses[0] += data
    losses[1] += alpha * penalty
    if not backward:
        return
    G = np.empty((n, k), dtype=dt)  # dL/dz_T, then dL/dz_t going back
    np.dot(R, np.ascontiguousarray(D.T), G)
    for i in range(n):
        for j in range(k):
            if Z[i, j] > 0.0:
                G[i, j] += alpha
            elif Z[i, j] < 0.0:
                G[i, j] -= alpha
    XT = np.ascontiguousarray(X.T)
    H = np.empty((n, k), dtype=dt)
    gx = np.empty((m, k), dtype=dt)
    gz = np.empty((k, k), dtype=dt)
    for t in range(n_layers - 1, -1, -1):
        U = Us[t]
        th = theta[t]
        for i in range(n):
            for j in range(k):
                u = U[i, j]
                if u > th[j]:
                    H[i, j] = G[i, j]
                    gtheta[t, j] -= G[i, j]
                elif u < -th[j]:
                    H[i, j] = G[i, j]
                    gtheta[t, j] += G[i, j]
                else:
                    H[i, j] = 0.0
        np.dot(XT, H, gx)
        gWx[t] += gx
        if t > 0:  # z_0 = 0: Wz_0 has no gradient and nothing flows further
            np.dot(np.ascontiguousarray(Zs[t].T), H, gz)
            gWz[t] += gz
            np.dot(H, np.ascontiguousarray(Wz[t].T), G)
