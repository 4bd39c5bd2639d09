"""Initial kernels of convolutional dictionary learning (``kernel_init``).

CRsAE/DUNL learn the kernels ``h_k`` of ``x = f(nu + sum_k h_k * z_k)`` by
descent from a starting bank; these are the starting banks, ``(K, C, kh, kw)``
windows of the training signals ``(n, C, h, w)``: centred on the largest
non-overlapping peaks ("peaks"), the event-triggered averages at known onsets
(DUNL's setting, "peaks" with a code mask), random windows ("random"), or a
user's array. They are projected by the estimator, not here.
"""

import numpy as np

from .shapes import kernel_shape, kernel_shape_2d


def initial_kernels(X4, kernel_init, n_components, kernel_size, rng, mask=None):
    """The starting kernels ``(n_components, C, kh, kw)`` (float64) from the
    signals ``X4`` and the code mask ``(n, K, p1, p2)`` if any."""
    k = n_components
    kh, kw = kernel_shape_2d(kernel_size)
    C = X4.shape[1]
    if not isinstance(kernel_init, str):
        H = np.asarray(kernel_init, dtype=np.float64)
        shape = (k, C, *kernel_shape(kernel_size))
        if H.shape != shape or not np.all(np.isfinite(H)):
            raise ValueError(
                f"kernel_init must be finite with shape (n_components, "
                f"n_channels, *kernel_size) = {shape}; got shape {H.shape}."
            )
        return H.reshape(k, C, kh, kw).copy()
    if kernel_init == "peaks" and mask is not None:
        return onset_averages(X4, mask, (kh, kw), rng)
    if kernel_init == "peaks":
        return windows_at_peaks(X4, k, (kh, kw), rng)
    return random_windows(X4, k, (kh, kw), rng)


def windows_at_peaks(X4, k, kshape, rng):
    """Windows centred on the ``k`` largest non-overlapping peaks of ``|X|``."""
    n, C, h, w = X4.shape
    kh, kw = kshape
    n_top = max(50 * k, 1000)
    if hasattr(X4, "largest_energy"):  # rows held on a cluster (distributed)
        order = X4.largest_energy(n_top)
    else:
        order = np.argsort(np.abs(X4).sum(axis=1).ravel())[::-1][:n_top]
    taken = []
    out = np.zeros((k, C, kh, kw))
    for idx in order:
        i, r, c = np.unravel_index(idx, (n, h, w))
        r0 = int(np.clip(r - kh // 2, 0, h - kh))
        c0 = int(np.clip(c - kw // 2, 0, w - kw))
        if any(i == j and abs(r0 - a) < kh and abs(c0 - b) < kw for j, a, b in taken):
            continue
        taken.append((i, r0, c0))
        out[len(taken) - 1] = X4[i, :, r0 : r0 + kh, c0 : c0 + kw]
        if len(taken) == k:
            return out
    rest = random_windows(X4, k - len(taken), kshape, rng)
    out[len(taken) :] = rest
    return out


def onset_averages(X4, mask, kshape, rng, max_onsets=5000):
    """Event-triggered averages: kernel ``k`` is the mean of the windows of
    ``X4`` (minus each channel's mean) that start at the allowed onsets of
    ``mask[:, k]`` (at most ``max_onsets`` of them, drawn at random)."""
    K = mask.shape[1]
    kh, kw = kshape
    means = X4.mean(axis=(0, 2, 3), dtype=np.float64)[:, None, None]
    onsets = [np.argwhere(mask[:, k]) for k in range(K)]  # rows: sample, i, j
    if K > 1 and all(np.array_equal(onsets[0], o) for o in onsets[1:]):
        groups = np.array_split(rng.permutation(len(onsets[0])), K)
        onsets = [onsets[0][np.sort(g)] for g in groups]
    out = np.zeros((K, X4.shape[1], kh, kw))
    for k, on in enumerate(onsets):
        if len(on) == 0:
            out[k] = random_windows(X4, 1, kshape, rng)[0]
            continue
        if len(on) > max_onsets:
            on = on[np.sort(rng.choice(len(on), max_onsets, replace=False))]
        for i, r, c in on:
            out[k] += X4[i, :, r : r + kh, c : c + kw]
        out[k] = out[k] / len(on) - means
    return out


def random_windows(X4, k, kshape, rng):
    """``k`` windows of ``X4`` at random places, plus Gaussian noise of
    ``1e-3`` times the largest magnitude of the windows."""
    n, C, h, w = X4.shape
    kh, kw = kshape
    out = np.empty((k, C, kh, kw))
    for j in range(k):
        i = rng.randint(n)
        r0, c0 = rng.randint(h - kh + 1), rng.randint(w - kw + 1)
        out[j] = X4[i, :, r0 : r0 + kh, c0 : c0 + kw]
    out += 1e-3 * rng.standard_normal(out.shape) * (np.abs(out).max() + 1e-12)
    return out
