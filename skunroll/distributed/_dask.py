"""What the distributed layer needs of dask: the optional import, the client,
dask arrays from the caller's input, and shards of rows held on workers."""

import numpy as np


def import_dask():
    """``dask.array`` and ``distributed``, or an ImportError saying how to
    install them."""
    try:
        import dask.array as da
        import distributed
    except ImportError as exc:  # pragma: no cover - the test extra has dask
        raise ImportError(
            "skunroll.distributed needs dask and distributed: "
            'pip install "skunroll[dask]"'
        ) from exc
    return da, distributed


def get_client(client=None):
    """``client``, or the current ``distributed.Client`` (a ValueError when
    there is none)."""
    _, distributed = import_dask()
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise ValueError(
            "skunroll.distributed needs a distributed.Client: create one "
            "(distributed.Client(...)) or pass client=."
        ) from exc


def is_dask_array(X):
    return type(X).__module__.startswith("dask.array")


def as_dask_array(X, name, ndim=None, chunks="auto"):
    """``X`` as a dask array (numpy input is wrapped, not copied)."""
    da, _ = import_dask()
    if not is_dask_array(X):
        X = np.asarray(X)
        if ndim is not None and X.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D; got shape {X.shape}.")
        X = da.from_array(X, chunks=chunks)
    if ndim is not None and X.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {X.shape}.")
    if any(np.isnan(c) for dim in X.chunks for c in dim):
        raise ValueError(
            f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first."
        )
    return X


def total_threads(client):
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(w["nthreads"] for w in workers))


def row_shards(client, X, rows_per_shard=None, prepare=None, n_units=len):
    """Blocks of rows of ``X`` computed and held on the workers: their
    futures (``prepare(block)`` of each block if given) and the ranges of
    training units (``n_units`` of each prepared block) they hold."""
    if rows_per_shard is not None:
        X = X.rechunk({0: int(rows_per_shard)})
    elif len(X.chunks[0]) == 1 and X.shape[0] > 1:
        n_blocks = min(X.shape[0], 2 * total_threads(client))
        X = X.rechunk({0: -(-X.shape[0] // n_blocks)})
    X = X.rechunk({i: -1 for i in range(1, X.ndim)})
    blocks = list(X.to_delayed().reshape(len(X.chunks[0]), -1)[:, 0])
    if prepare is not None:
        from dask import delayed

        blocks = [delayed(prepare, pure=True)(b) for b in blocks]
    shards = client.compute(blocks)
    counts = client.gather([client.submit(n_units, s, pure=False) for s in shards])
    edges = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    bounds = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    return shards, bounds
