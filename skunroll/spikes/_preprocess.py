"""Recordings as the spike sorter sees them: validated, in units of noise.

A recording is an array ``(n_times, n_channels)`` (or a list of such chunks,
consecutive pieces of one recording, concatenated). Integer data (int16 from
an acquisition board) is cast to float32 and multiplied by ``gain`` (the
board's volts-per-bit, so that templates come out in physical units; it does
not change the sorted spikes). Every channel's median is removed and its noise
level is the median absolute deviation over 0.6745, the standard deviation of
Gaussian noise, robust to the spikes themselves. The sorter then works in
units of that noise, so that a recording in µV, in volts or in units of noise
gives the same spikes. A constant channel (a dead or grounded contact; its
noise level is 0) is ignored: it is set to zero after scaling and reported
in ``noise_level_`` as 0. An all-constant recording, a NaN or infinite
sample, or fewer samples than a kernel are errors.
"""

import threading

import numpy as np
from scipy import signal as sp_signal

from .._kernels import _iir
from .._parallel import map_in_order

#: MAD of a standard normal variable
MAD_TO_STD = 0.6744897501960817
#: the noise is measured on at most this many samples (spread over the recording)
NOISE_SAMPLES = 1 << 20


def as_recording(X, gain):
    """A float (n_times, n_channels) array from ``X`` (or a list of chunks).

    float32 and float64 are kept; integers and other types become float32 (the
    integers times ``gain``). The caller's array is never modified.
    """
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError("X is an empty list; expected recording chunks.")
        chunks = [as_recording(x, gain) for x in X]
        widths = {c.shape[1] for c in chunks}
        if len(widths) != 1:
            raise ValueError(
                f"X's chunks have different numbers of channels {sorted(widths)}; "
                "all chunks must have the same channels."
            )
        dtype = np.result_type(*chunks)
        return np.concatenate([c.astype(dtype, copy=False) for c in chunks])
    if hasattr(X, "dtype") and X.dtype == object:
        X = np.asarray(X, dtype=np.float64)
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError("X is complex; expected a real-valued recording.")
    if X.dtype.kind not in "biuf":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X could not be converted to floats: {exc}") from exc
    if X.ndim == 1:
        raise ValueError(
            f"X has shape {X.shape}; expected (n_times, n_channels). Reshape a "
            "single channel with X.reshape(-1, 1)."
        )
    if X.ndim != 2:
        raise ValueError(f"X has shape {X.shape}; expected (n_times, n_channels).")
    if X.shape[1] == 0:
        raise ValueError("X has 0 channels; expected (n_times, n_channels).")
    if X.dtype.kind in "biu":
        X = X.astype(np.float32) * np.float32(gain)
    elif X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    elif gain != 1.0:
        X = X * X.dtype.type(gain)
    return X


def check_finite(X):
    """ValueError naming the channels with NaN or infinite samples."""
    bad = ~np.isfinite(X)
    if bad.any():
        channels = np.flatnonzero(bad.any(axis=0))
        all_nan = [int(c) for c in channels if bad[:, c].all()]
        what = f" (channels {all_nan} are entirely NaN/inf)" if all_nan else ""
        raise ValueError(
            f"X has NaN or infinite samples in channels {channels.tolist()[:20]}"
            f"{what}; remove or interpolate them (a dead channel can be given as "
            "constant, which the sorter ignores)."
        )


def subsample_rows(n_times, n_max, block=4096):
    """Indices of at most about ``n_max`` rows: evenly spread blocks of rows."""
    if n_times <= n_max:
        return slice(None)
    n_blocks = max(1, n_max // block)
    starts = np.linspace(0, n_times - block, n_blocks).astype(np.int64)
    return (starts[:, None] + np.arange(block)[None, :]).ravel()


def robust_noise(X):
    """Median and noise level (MAD / 0.6745) of every channel."""
    rows = subsample_rows(X.shape[0], NOISE_SAMPLES)
    C = X.shape[1]
    median, mad = np.empty(C), np.empty(C)
    for c in range(C):  # one channel's copy at a time: memory stays small
        x = np.array(X[rows, c], dtype=np.float64)
        median[c] = np.median(x, overwrite_input=True)
        np.abs(np.subtract(x, median[c], out=x), out=x)
        mad[c] = np.median(x, overwrite_input=True) / MAD_TO_STD
        # a channel whose MAD is 0 but that varies (quantised, mostly
        # constant) falls back to its standard deviation
        if mad[c] == 0:
            mad[c] = np.asarray(X[rows, c], dtype=np.float64).std()
    return median, mad


def bandpass(X, band, sampling_frequency, decimate=1, n_jobs=None):
    """Zero-phase Butterworth filter of order 2 (``band`` = (low, high) in Hz,
    either None), so that spike times do not move, keeping one sample in
    ``decimate``: channel-major ``(n_channels, ceil(n_times / decimate))``
    float32, the channels filtered in parallel (``sosfiltfilt``'s recursions,
    padding and initial states, in float64, without copying the recording).
    """
    low, high = band
    nyq = sampling_frequency / 2
    if high is not None and high >= nyq:
        high = None
    if low is None and high is None:
        return np.ascontiguousarray(X[::decimate].T, dtype=np.float32)
    if low is not None and high is not None:
        sos = sp_signal.butter(
            2, [low, high], "bandpass", fs=sampling_frequency, output="sos"
        )
    elif low is not None:
        sos = sp_signal.butter(2, low, "highpass", fs=sampling_frequency, output="sos")
    else:
        sos = sp_signal.butter(2, high, "lowpass", fs=sampling_frequency, output="sos")
    # scipy's default padding (sosfiltfilt), at most the recording less one
    zeros = min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    padlen = min(3 * (2 * len(sos) + 1 - int(zeros)), X.shape[0] - 1)
    zi = sp_signal.sosfilt_zi(sos)
    T, C = X.shape
    out = np.empty((C, -(-T // decimate)), dtype=np.float32)
    buffers = {}

    def run(c):  # one float64 buffer per thread
        buf = buffers.get(threading.get_ident())
        if buf is None:
            buf = buffers[threading.get_ident()] = np.empty(T + 2 * padlen)
        _iir.sosfiltfilt_channel(X, c, sos, zi, padlen, decimate, out[c], buf)

    map_in_order(run, C, n_jobs)
    return out


def whitening_matrix(Xn, regularization=1e-3):
    """ZCA whitening of the channels of ``Xn`` (already in units of noise),
    estimated on the samples far from large deflections (the noise)."""
    rows = subsample_rows(Xn.shape[0], NOISE_SAMPLES)
    sample = np.asarray(Xn[rows], dtype=np.float64)
    quiet = np.all(np.abs(sample) < 4.0, axis=1)
    if quiet.sum() > 10 * Xn.shape[1]:
        sample = sample[quiet]
    cov = np.cov(sample, rowvar=False).reshape(Xn.shape[1], Xn.shape[1])
    w, V = np.linalg.eigh(cov)
    w = np.maximum(w, regularization * max(w.max(), 1e-12))
    return (V / np.sqrt(w)) @ V.T
