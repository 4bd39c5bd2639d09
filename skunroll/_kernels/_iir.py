"""Zero-phase IIR filtering (scipy's ``sosfiltfilt``) of one channel of a
time-major recording, decimated and written channel-major.

``sosfiltfilt`` on a ``(n_times, n_channels)`` recording copies it, extends
it, filters it forward and backward in float64 and copies it back: on 60 s of
16 channels at 30 kHz about 4 s, most of it memory traffic. Here one channel
at a time is read from the recording, filtered forward into a float64 buffer
(the odd extension generated on the fly) and backward into every ``q``-th
sample of its row of the output: one buffer per thread, no copy of the
recording. The recursions, padding and initial states are scipy's, so the
output equals ``sosfiltfilt(sos, x)[::q]`` to rounding.
"""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _ext(X, c, n, T, padlen):
    """Sample ``n`` (``-padlen <= n < T + padlen``) of channel ``c``'s odd
    extension (``2 x[0] - x[-n]`` before the start, ``2 x[-1] - x[...]``
    after the end)."""
    if n < 0:
        return 2.0 * X[0, c] - X[-n, c]
    if n >= T:
        return 2.0 * X[T - 1, c] - X[2 * (T - 1) - n, c]
    return float(X[n, c])


@njit(nogil=True, cache=True)
def sosfiltfilt_channel(X, c, sos, zi, padlen, q, out, buf):
    """``out[:] = sosfiltfilt(sos, X[:, c], padlen=padlen)[::q]``; ``zi`` is
    ``sosfilt_zi(sos)``, ``buf`` a float64 buffer of ``T + 2 padlen``."""
    T = X.shape[0]
    n_sec = sos.shape[0]
    state = np.empty((n_sec, 2))
    x0 = _ext(X, c, -padlen, T, padlen)
    for s in range(n_sec):
        state[s, 0] = zi[s, 0] * x0
        state[s, 1] = zi[s, 1] * x0
    for n in range(-padlen, T + padlen):
        v = _ext(X, c, n, T, padlen)
        for s in range(n_sec):
            y = sos[s, 0] * v + state[s, 0]
            state[s, 0] = sos[s, 1] * v - sos[s, 4] * y + state[s, 1]
            state[s, 1] = sos[s, 2] * v - sos[s, 5] * y
            v = y
        buf[n + padlen] = v
    y0 = buf[T + 2 * padlen - 1]
    for s in range(n_sec):
        state[s, 0] = zi[s, 0] * y0
        state[s, 1] = zi[s, 1] * y0
    for m in range(T + 2 * padlen - 1, -1, -1):
        v = buf[m]
        for s in range(n_sec):
            y = sos[s, 0] * v + state[s, 0]
            state[s, 0] = sos[s, 1] * v - sos[s, 4] * y + state[s, 1]
            state[s, 1] = sos[s, 2] * v - sos[s, 5] * y
            v = y
        t = m - padlen
        if 0 <= t < T and t % q == 0:
            out[t // q] = v
