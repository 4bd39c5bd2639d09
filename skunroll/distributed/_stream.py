"""Streaming: ``partial_fit`` over chunks of rows of an array on disk."""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["partial_fit_chunks"]


def partial_fit_chunks(estimator, X, chunk_rows=4096, *, n_epochs=1, shuffle=True,
                       random_state=None, verbose=0):  # fmt: skip
    """Train ``estimator`` by ``partial_fit`` on chunks of rows of ``X``.

    Only one chunk is in memory at a time: ``X`` is anything that has a
    ``shape`` and gives a numpy array for ``X[a:b]``: a ``numpy.memmap``, a
    ``zarr`` or ``h5py`` array, a dask array (each chunk computed). No dask
    needed.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
        ``UnrolledDictionaryLearning``, ``MixMateClustering``, ...
    X : array-like of shape (n_samples, n_features)
        Rows, read ``chunk_rows`` at a time (cast to float32/float64 as
        ``partial_fit`` does; the first chunk's dtype is kept).
    chunk_rows : int, default=4096
        Rows per ``partial_fit`` call (one optimiser step each).
    n_epochs : int, default=1
        Passes over ``X``.
    shuffle : bool, default=True
        Visit the chunks in a new random order every epoch (the rows within
        a chunk stay together: reading stays sequential on disk).
    random_state : int, RandomState instance or None, default=None
        The chunk order.
    verbose : int, default=0
        Print one line per epoch.

    Returns
    -------
    estimator : the updated estimator.
    """
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"X must be 2-D with a shape; got {type(X).__name__}.")
    for name, value in (("chunk_rows", chunk_rows), ("n_epochs", n_epochs)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    n = int(shape[0])
    starts = np.arange(0, n, int(chunk_rows))
    rng = check_random_state(random_state)
    for epoch in range(int(n_epochs)):
        order = rng.permutation(starts) if shuffle else starts
        for a in order:
            chunk = X[int(a) : int(min(a + chunk_rows, n))]
            if hasattr(chunk, "compute"):
                chunk = chunk.compute()
            estimator.partial_fit(np.asarray(chunk))
        if verbose:
            print(f"[partial_fit_chunks] epoch {epoch + 1}/{n_epochs}: "
                  f"{len(starts)} chunks of {chunk_rows} rows", flush=True)  # fmt: skip
    return estimator
