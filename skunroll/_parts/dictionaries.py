"""Parametrisations of the dictionary: the set the atoms are kept on.

After every optimiser step the dictionary is projected back onto its set, as
in the constrained dictionary learning of Mairal et al. (JMLR 2010) and in
CRsAE / DUNL:

================== ================================= =======================
parametrisation    set                               asked for by
================== ================================= =======================
unit-norm atoms    ``||d_k||_2 = 1``                 always (the scale of a
                                                     code is free otherwise)
non-negative atoms ``d_k >= 0`` on the unit sphere   ``positive_dict``,
                                                     ``positive_kernels``
rank-1 kernels     ``h_k = u_k v_k^T`` (channels x   ``rank1`` (multichannel
                   time), unit norm                  convolutional kernels)
================== ================================= =======================

Dense atoms are the rows of ``D`` (n_components, n_features); convolutional
kernels are ``H`` (n_kernels, n_channels, kh, kw). A rank-1 kernel is trained
on its factors: the gradient with respect to ``H`` is pulled back to ``(u, v)``
and projected on the tangent of the factors' spheres.
"""

import numpy as np


def project_rows(D, positive, rng):
    """Clip to non-negative (``positive``) and renormalise rows in place; a row
    that vanishes is replaced by a random unit vector (non-negative if
    ``positive``)."""
    if positive:
        np.maximum(D, 0, out=D)
    D /= np.maximum(np.abs(D).max(axis=1, keepdims=True), np.finfo(D.dtype).tiny)
    norms = np.linalg.norm(D, axis=1)
    zero = ~(norms > 0)
    if np.any(zero):
        D[zero] = rng.standard_normal((int(zero.sum()), D.shape[1]))
        if positive:
            D[zero] = np.abs(D[zero])
        norms = np.linalg.norm(D, axis=1)
    D /= norms[:, None].astype(D.dtype)


def project_kernels(H, positive, rank1):
    """Rank-1 (if asked), non-negative (if asked) and unit-norm kernels, in
    place; returns the norms before normalisation. A kernel that vanishes
    restarts as a centred spike."""
    if rank1:
        for k in range(H.shape[0]):
            u, v = rank1_factors(H[k])
            H[k] = np.outer(u, v).reshape(H[k].shape)
    if positive:
        np.maximum(H, 0, out=H)
    scale = np.abs(H).max(axis=(1, 2, 3)).astype(np.float64)
    scale[scale == 0] = 1.0
    Hs = H / scale[:, None, None, None]  # no overflow for huge data
    norms = scale * np.sqrt(np.einsum("kcij,kcij->k", Hs, Hs, dtype=np.float64))
    dead = ~(norms > 0) | ~np.isfinite(norms)
    if np.any(dead):
        H[dead] = 0.0
        H[dead, :, H.shape[2] // 2, H.shape[3] // 2] = 1.0
        norms[dead] = np.sqrt(H.shape[1])
    H[...] = (H / norms[:, None, None, None]).astype(H.dtype)
    return norms


def rank1_factors(h):
    """Leading singular pair ``(u, s v)`` of a ``(C, kh, kw)`` kernel."""
    M = h.reshape(h.shape[0], -1).astype(np.float64)
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    sign = 1.0 if Vt[0][np.argmax(np.abs(Vt[0]))] >= 0 else -1.0
    return sign * U[:, 0], sign * s[0] * Vt[0]


def kernel_parameter_shape(H, rank1):
    """Shape of the trained parameters of kernels ``H``: ``H`` itself, or the
    factors ``[u_k, v_k]`` of every rank-1 kernel."""
    if rank1:
        return (H.shape[0], H.shape[1] + H.shape[2] * H.shape[3])
    return H.shape


def rank1_parameters(H, grad):
    """Factors ``[u_k, v_k]`` of every rank-1 kernel and the gradient pulled
    back to them, each factor's component along itself removed."""
    K, C = H.shape[:2]
    params = np.empty(kernel_parameter_shape(H, True))
    G = np.empty_like(params)
    for k in range(K):
        u, v = rank1_factors(H[k])
        g = grad[k].reshape(C, -1)
        params[k, :C], params[k, C:] = u, v
        gu, gv = g @ v, u @ g
        G[k, :C] = gu - (gu @ u) / (u @ u) * u
        G[k, C:] = gv - (gv @ v) / (v @ v) * v
    return params, G


def rank1_kernels(params, H):
    """Write the kernels ``u_k v_k^T`` of the factors ``params`` into ``H``."""
    C = H.shape[1]
    for k in range(H.shape[0]):
        H[k] = np.outer(params[k, :C], params[k, C:]).reshape(H[k].shape)
