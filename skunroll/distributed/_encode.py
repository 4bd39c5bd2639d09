"""Lazy encoding of dask arrays by fitted estimators.

Rows (samples) are independent: :func:`transform` maps the estimator's
``transform`` over blocks of rows. Long signals are not: a code of an
unrolled convolutional encoder after ``T`` steps depends on the signal
``T (kw - 1)`` positions on either side (``kw`` the kernel width), so
:func:`code_maps` and :func:`detect_events` cut the time axis into pieces
extended by that reach (not by one kernel length, which would change the
codes near every cut), and the result equals encoding the whole signal.
"""

import numpy as np

from .._parallel import single_threaded_blas
from ._dask import as_dask_array, import_dask

__all__ = ["code_maps", "detect_events", "transform"]


def _transform_block(block, estimator):
    with single_threaded_blas():
        return estimator.transform(block)


def transform(estimator, X):
    """``estimator.transform`` of the rows of ``X``, lazily.

    Parameters
    ----------
    estimator : fitted transformer
        Any fitted skunroll transformer whose ``transform`` maps rows
        independently (``UnrolledDictionaryLearning``, ``MixMateClustering``,
        ``UnrolledSparseCoder``, ``LearnedSparseCoder``, ...).
    X : dask.array.Array of shape (n_samples, n_features)
        Rows in blocks (the columns are gathered into one block).

    Returns
    -------
    codes : dask.array.Array of shape (n_samples, n_features_out)
        Not computed; equal to ``estimator.transform(X.compute())``. Sparse
        codes stay sparse: with ``transform_output="sparse"`` the blocks are
        scipy CSR matrices (``compute()`` stacks them into one).
    """
    X = as_dask_array(X, "X", ndim=2)
    X = X.rechunk({1: -1})
    n_out = int(estimator._n_features_out)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    meta = np.empty((0, 0), dtype=dtype)
    if getattr(estimator, "transform_output", "dense") == "sparse":
        import scipy.sparse as sp

        meta = sp.csr_matrix((0, 0), dtype=dtype)
    return X.map_blocks(
        _transform_block,
        estimator,
        dtype=dtype,
        chunks=(X.chunks[0], (n_out,)),
        meta=meta,
    )


def _conv_geometry(estimator, X, chunk_positions):
    """The signal as a 3-D dask array ``(n_signals, n_channels, n_times)``,
    the kernel width, the encoder's reach and the code positions' pieces."""
    from .._conv.shapes import kernel_shape_2d

    if len(getattr(estimator, "signal_shape_", (1, 1))) > 2:
        raise ValueError("code_maps and detect_events on dask arrays take 1-D signals")
    X = as_dask_array(X, "X")
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim != 3:
        raise ValueError(
            f"X must be (n_signals, n_times) or (n_signals, n_channels, n_times); "
            f"got shape {X.shape}."
        )
    kw = kernel_shape_2d(estimator.kernel_size)[1]
    width = X.shape[2] - kw + 1
    if width < 1:
        raise ValueError(
            f"X has {X.shape[2]} time points, fewer than the kernel's {kw}."
        )
    reach = estimator._net.n_unroll * (kw - 1)
    step = int(chunk_positions or estimator.chunk_size)
    pieces = [(a, min(a + step, width)) for a in range(0, width, step)]
    return X, kw, reach, width, pieces


def _squeeze_signal(x, estimator):
    return x[:, 0] if len(estimator.signal_shape_) == 1 else x


def _piece_codes(estimator, x, keep_from, keep_to):
    with single_threaded_blas():
        codes = estimator.code_maps(_squeeze_signal(x, estimator))
    return codes[..., keep_from:keep_to]


def code_maps(estimator, X, chunk_positions=None):
    """Code maps of long signals, lazily, in pieces along time.

    Parameters
    ----------
    estimator : fitted ConvolutionalDictionaryLearning
        With 1-D kernels.
    X : dask.array.Array of shape (n_signals, n_times) or (n_signals,
        n_channels, n_times)
        Signals (a long recording: one signal, chunked or not).
    chunk_positions : int, default=None
        Code positions per piece (None: the estimator's ``chunk_size``).

    Returns
    -------
    codes : dask.array.Array of shape (n_signals, n_components, n_positions)
        Equal to ``estimator.code_maps(X.compute())``.
    """
    da, _ = import_dask()
    from dask import delayed

    X, kw, reach, width, pieces = _conv_geometry(estimator, X, chunk_positions)
    n, k = X.shape[0], estimator.n_components_
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    out = []
    for a, b in pieces:
        lo, hi = max(0, a - reach), min(width, b + reach)
        x = X[:, :, lo : hi + kw - 1]
        codes = delayed(_piece_codes, pure=True)(estimator, x, a - lo, b - lo)
        out.append(da.from_delayed(codes, shape=(n, k, b - a), dtype=dtype))
    return da.concatenate(out, axis=2)


def _piece_events(estimator, x, lo, keep_from, keep_to, threshold, min_distance):
    import pandas as pd

    with single_threaded_blas():
        events = estimator.detect_events(
            _squeeze_signal(x, estimator),
            threshold=threshold,
            min_distance=min_distance,
        )
    position = events["position"].astype(np.int64)
    keep = (position >= keep_from) & (position < keep_to)
    return pd.DataFrame(
        {
            "sample": events["sample"][keep].astype(np.int64),
            "kernel": events["kernel"][keep].astype(np.int64),
            "position": position[keep] + lo,
            "amplitude": events["amplitude"][keep].astype(np.float64),
        }
    )


def detect_events(estimator, X, threshold=0.0, min_distance="auto",
                  chunk_positions=None):  # fmt: skip
    """``estimator.detect_events`` of long signals, lazily, as a dask
    dataframe.

    Parameters
    ----------
    estimator : fitted ConvolutionalDictionaryLearning
        With 1-D kernels.
    X : dask.array.Array of shape (n_signals, n_times) or (n_signals,
        n_channels, n_times)
        Signals.
    threshold, min_distance
        As in :meth:`ConvolutionalDictionaryLearning.detect_events`.
    chunk_positions : int, default=None
        Code positions per piece (None: the estimator's ``chunk_size``).

    Returns
    -------
    events : dask.dataframe.DataFrame
        Columns ``sample``, ``kernel``, ``position`` (the onset in the whole
        signal) and ``amplitude``, one partition per piece in time order;
        its rows are those of ``estimator.detect_events(X.compute())``
        (sorted by sample, kernel and position within each piece). Each
        piece is extended by the encoder's reach plus the suppression radius,
        so the events near a cut are those of the whole signal.
    """
    import dask.dataframe as dd
    import pandas as pd
    from dask import delayed

    from .._conv.events import suppression_radius

    X, kw, reach, width, pieces = _conv_geometry(estimator, X, chunk_positions)
    radius = suppression_radius(min_distance, kw)
    extend = reach + int(np.max(radius))
    parts = []
    for a, b in pieces:
        lo, hi = max(0, a - extend), min(width, b + extend)
        x = X[:, :, lo : hi + kw - 1]
        parts.append(
            delayed(_piece_events, pure=True)(
                estimator, x, lo, a - lo, b - lo, threshold, min_distance
            )
        )
    meta = pd.DataFrame(
        {
            "sample": np.empty(0, np.int64),
            "kernel": np.empty(0, np.int64),
            "position": np.empty(0, np.int64),
            "amplitude": np.empty(0, np.float64),
        }
    )
    return dd.from_delayed(parts, meta=meta, verify_meta=False)
