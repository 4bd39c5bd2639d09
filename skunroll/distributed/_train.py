"""Data-parallel training on a Dask cluster.

The one trainer (:class:`skunroll._training.Trainer`) splits every step into
*compute summed gradients on these samples* and *apply the summed
gradients*. Here the first half runs on the workers: the rows of a
``dask.array`` are held on the workers as shards (numpy blocks computed
there, never gathered); every step the client sends the parameters (a light
copy of the training state) with each shard's part of the minibatch, every
worker returns the ``Sums`` of its part, and the client adds them
(:func:`skunroll._training.combine_sums`) and takes one optimiser step.
The client draws the minibatches from the same random stream as a local
fit, so training on a cluster equals training on one machine on the same
data up to the rounding of the sums (tested).

What each family needs of the data outside the gradients (its initial
dictionary, a cluster's re-seeding, MixMate's fitted labels) is read through
:class:`Rows`: the rows asked for, fetched from the cluster.
"""

import copy
import functools
import pickle
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._parallel import single_threaded_blas
from .._training import Sums, atomic, combine_sums
from ._dask import as_dask_array, get_client, import_dask, row_shards

__all__ = ["DistributedFitStats", "fit"]


@dataclass
class DistributedFitStats:
    """What a distributed fit sent and received.

    ``n_steps`` optimiser steps; ``bytes_sent`` / ``bytes_received``: the
    pickled parameters and minibatch indices sent to the workers and the
    pickled ``Sums`` they returned, summed over the steps (the data never
    travels; counted only with ``measure_bytes``, which ``fit`` sets when
    the stats are returned: it pickles each message once more on the
    client); ``seconds`` the wall time of the training; ``n_shards`` the
    blocks of rows held on the workers.
    """

    measure_bytes: bool = True
    n_steps: int = 0
    n_shards: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    step_seconds: list = field(default_factory=list)

    @property
    def bytes_per_step(self):
        return (self.bytes_sent + self.bytes_received) / max(self.n_steps, 1)


class Rows:
    """The rows of a dask array, read on demand: ``shape``, ``dtype``,
    ``ndim``, ``len``, indexing (computed, a numpy array), the reductions
    the families' initialisations use (``max``, ``min``, ``mean``), a lazy
    difference and the largest entries of ``|X|`` summed over channels.

    Initialisations that draw rows at random (``X[rows]``) read only those
    rows, so they equal the local ones exactly.
    """

    def __init__(self, array):
        self.array = array

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)

    def __len__(self):
        return self.array.shape[0]

    def __getitem__(self, key):
        if isinstance(key, np.ndarray) and key.dtype != bool:
            key = np.asarray(key)
            order = np.argsort(key, kind="stable")
            rows = np.asarray(self.array[key[order]].compute())
            out = np.empty_like(rows)
            out[order] = rows
            return out
        return np.asarray(self.array[key].compute())

    def max(self, *args, **kwargs):
        return np.asarray(self.array.max(*args, **kwargs).compute())

    def min(self, *args, **kwargs):
        return np.asarray(self.array.min(*args, **kwargs).compute())

    def mean(self, *args, **kwargs):
        return np.asarray(self.array.mean(*args, **kwargs).compute())

    def __sub__(self, other):
        return Rows(self.array - other)

    def largest_energy(self, n_top):
        """Flat indices into ``|X|.sum(axis=1)`` of its ``n_top`` largest
        entries, largest first (``windows_at_peaks`` of the convolutional
        initialisation), computed on the workers."""
        da, _ = import_dask()
        energy = abs(self.array).sum(axis=1).ravel()
        n_top = min(int(n_top), energy.shape[0])
        return np.asarray(da.argtopk(energy, n_top).compute())


def _light_state(state, optimizers=False):
    """What the workers need of the training state: everything but the
    optimiser's moments (unless ``optimizers``: the local steps of periodic
    averaging take them), the snapshot, the history, the random stream and
    the warm starts."""
    light = copy.copy(state)
    if not optimizers:
        light.optimizers = {}
    light.previous = None
    light.objective_history = []
    light.rng = None  # the gradients draw nothing
    if hasattr(light, "codes"):
        light.codes = None
    return light


def _pickled_size(obj):
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _shard_gradients(model, state, shards, parts, numbers):
    """On a worker: the summed gradients of the rows ``parts[i]`` of
    ``shards[i]``, added there (one ``Sums`` per worker travels back)."""
    with single_threaded_blas():
        sums = [
            model.gradients(state, x, rows)
            for x, rows in zip(shards, parts, strict=True)
        ]
    return combine_sums(sums, getattr(model, "combine_extra", None))


class ShardedModel:
    """The estimator's training model with ``gradients`` computed on the
    workers' shards; every other method is the model's own."""

    def __init__(self, model, client, shards, bounds, stats, timeout):
        self._model = model
        self._client = client
        self._shards = shards
        self._bounds = bounds
        self._stats = stats
        self._timeout = timeout
        self._by_worker = None
        self._model_future = client.scatter(model, broadcast=True, hash=False)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def _groups(self):
        """The shards by the worker that holds them (in shard order), so that
        each worker adds its shards' sums before sending them: one gradient
        per worker and step travels, not one per shard."""
        if self._by_worker is None:
            holders = self._client.who_has(self._shards)
            groups = {}
            for s, shard in enumerate(self._shards):
                where = sorted(holders.get(shard.key, ())) or [None]
                groups.setdefault(where[0], []).append(s)
            self._by_worker = list(groups.items())
        return self._by_worker

    def _round(self, fn, sent, idx, groups, *args):
        """``fn(model, sent, shards, rows, *args, numbers)`` for every group
        of shards (``(worker, shard numbers)``) that holds rows of ``idx``,
        run on that worker if it is alive; their results in group order. The
        state is sent with each task (not scattered: a scattered copy on a
        worker that dies cannot be recomputed, and a broadcast waits for
        every worker)."""
        from distributed import wait

        start = time.perf_counter()
        measure = self._stats.measure_bytes
        sent_bytes = _pickled_size(sent) if measure else 0
        futures = []
        for worker, numbers in groups:
            parts = []
            for s in numbers:
                lo, hi = self._bounds[s]
                parts.append(idx[(idx >= lo) & (idx < hi)] - lo)
            keep = [i for i, part in enumerate(parts) if part.size]
            if not keep:
                continue
            place = {} if worker is None else {"workers": [worker]}
            futures.append(
                self._client.submit(
                    fn,
                    self._model_future,
                    sent,
                    [self._shards[numbers[i]] for i in keep],
                    [parts[i] for i in keep],
                    *args,
                    [numbers[i] for i in keep],
                    **place,
                    allow_other_workers=bool(place),
                    pure=False,
                )  # fmt: skip
            )
            if measure:
                self._stats.bytes_sent += sent_bytes + sum(
                    parts[i].nbytes for i in keep
                )
        try:
            wait(futures, timeout=self._timeout)
        except TimeoutError as exc:
            for f in futures:
                f.cancel()
            raise RuntimeError(
                f"a training step waited more than timeout={self._timeout} s "
                "for the workers"
            ) from exc
        parts = self._client.gather(futures)
        if measure:
            self._stats.bytes_received += sum(_pickled_size(p) for p in parts)
        self._stats.n_steps += 1
        self._stats.step_seconds.append(time.perf_counter() - start)
        return parts

    def gradients(self, state, data, idx):
        parts = self._round(_shard_gradients, _light_state(state), idx, self._groups())
        return combine_sums(parts, getattr(self._model, "combine_extra", None))


def _shard_local_steps(model, state, shards, parts, trainer, local_steps, seeds,
                       numbers):  # fmt: skip
    """On a worker: ``local_steps`` optimiser steps of the model on the rows
    of its one shard (in that many minibatches); the parameters' change, the
    optimiser and the summed objective."""
    (shard,), (idx,), (s,) = shards, parts, numbers
    state = copy.deepcopy(state)
    state.rng = np.random.RandomState(seeds[s])
    start = {k: v.copy() for k, v in state.params.items()}
    trainer.model = model
    trainer.verbose = 0
    trainer.callback = None
    trainer._start = time.perf_counter()
    total = 0.0
    with single_threaded_blas():
        for part in np.array_split(idx, local_steps):
            if part.size:
                objective, _ = trainer.step(state, shard, part)
                total += 0.0 if objective is None else objective * part.size
    deltas = {k: state.params[k] - start[k] for k in start}
    return Sums(
        objective=total,
        n=idx.size,
        grads=deltas,
        finite=all(np.all(np.isfinite(d)) for d in deltas.values()),
        stats={"parts": 1},
        extra=[state.optimizers],
    )


class AveragingModel(ShardedModel):
    """Periodic averaging (local SGD): every trainer step is a round in which
    each shard takes ``local_steps`` optimiser steps on its part of the
    round's rows from the same parameters; the client then moves the
    parameters to the shards' mean, averages the optimiser moments (Adam's,
    on a common scale) and projects the atoms back onto the unit sphere."""

    def __init__(self, model, client, shards, bounds, stats, timeout, trainer,
                 local_steps, project):  # fmt: skip
        super().__init__(model, client, shards, bounds, stats, timeout)
        self._trainer = copy.copy(trainer)
        self._local_steps = int(local_steps)
        self._project = project

    def prepare(self, state, idx):
        """Nothing: each shard prepares its own local steps."""

    def gradients(self, state, data, idx):
        sent = _light_state(state, optimizers=True)
        seeds = state.rng.randint(np.iinfo(np.int32).max, size=len(self._shards))
        each = [(None, [s]) for s in range(len(self._shards))]  # local steps apiece
        parts = self._round(_shard_local_steps, sent, idx, each, self._trainer,
                            self._local_steps, seeds)  # fmt: skip
        return combine_sums(parts, lambda extras: [o for e in extras for o in e])

    def mean_gradients(self, state, sums):
        parts = sums.stats["parts"]
        return sums.objective / sums.n, {k: g / parts for k, g in sums.grads.items()}

    def apply(self, state, data, idx, grads, sums):
        for k, delta in grads.items():
            state.params[k] += delta.astype(state.params[k].dtype, copy=False)
        self._project(state)
        state.optimizers = _average_optimizers(sums.extra)


def _average_optimizers(optimizers):
    """The shards' optimisers averaged: Adam's moments on the first one's
    gradient scale; the step count of the furthest."""
    out = copy.deepcopy(optimizers[0])
    for key, first in out.items():
        others = [o[key] for o in optimizers]
        if not hasattr(first, "m"):
            continue
        ref = first.scale if first.scale else 1.0
        m = np.zeros_like(first.m)
        v = np.zeros_like(first.v)
        for o in others:
            r = (o.scale if o.scale else 1.0) / ref
            m += o.m * r
            v += o.v * r * r
        first.m = m / len(others)
        first.v = v / len(others)
        first.n_steps = max(o.n_steps for o in others)
    return out


def fit(estimator, X, *, client=None, rows_per_shard=None, sync="gradients",
        local_steps=8, timeout=600, return_stats=False):  # fmt: skip
    """Fit ``estimator`` on the rows of a dask array held on a cluster.

    Parameters
    ----------
    estimator : UnrolledDictionaryLearning, MixMateClustering or \
            ConvolutionalDictionaryLearning
        The estimator to fit, in place (as ``estimator.fit(X)``).
        ``MixMateClustering`` needs ``n_init=1`` (with a string ``init``
        its first clustering is that of 10,000 random rows);
        ``ConvolutionalDictionaryLearning`` takes 1-D kernels and keeps no
        warm starts between epochs (the fit equals the local one with
        ``code_warm_start=False``).
    X : dask.array.Array or array-like
        Training data: rows ``(n_samples, n_features)``, or signals
        ``(n_signals, [n_channels,] n_times)`` for the convolutional model;
        a numpy array is split into blocks and sent to the workers once.
    client : distributed.Client, default=None
        The cluster; None uses the current client (``distributed.get_client``).
    rows_per_shard : int, default=None
        Rows of the blocks held on the workers (None: the dask array's
        chunks, or two blocks per worker thread for a numpy array).
    sync : {"gradients", "average"}, default="gradients"
        ``"gradients"``: one optimiser step per minibatch on the summed
        gradients of the shards (equal to the local fit). ``"average"``
        (``UnrolledDictionaryLearning`` only): periodic averaging, for
        networks whose steps are too short to pay for a round trip each:
        every round of ``local_steps * batch_size`` rows, each shard takes
        ``local_steps`` steps on its share of them (minibatches of about
        ``batch_size / n_shards`` rows) from the same parameters, then the
        client averages the parameters and Adam's moments and re-normalises
        the atoms: as many sequential steps per epoch as a local fit, one
        round trip per ``local_steps`` of them. Dead atoms are re-drawn only
        within a round, and a re-drawn atom is averaged with the other
        shards' (see the benchmark for what the averaging costs in
        accuracy).
    local_steps : int, default=8
        Steps per shard between averages (``sync="average"``).
    timeout : float, default=600
        Seconds a step may wait for the workers (a cluster that lost all its
        workers, a worker restarting for ever) before the fit raises.
    return_stats : bool, default=False
        Also return a :class:`DistributedFitStats`.

    Returns
    -------
    estimator : the fitted estimator (and the stats if ``return_stats``).

    Notes
    -----
    Every step the client draws the minibatch from the estimator's random
    stream (as a local fit does), sends the parameters and each shard's
    indices of the minibatch to the workers, and adds the returned summed
    gradients before one optimiser step: the fit equals ``estimator.fit(X)``
    on one machine up to the rounding of the sums. Only the parameters,
    indices and gradients travel. A fit that fails (a worker lost for good,
    bad data) raises and leaves the estimator as it was.
    """
    from .._conv.dict_learning import ConvolutionalDictionaryLearning
    from .._dense.dict_learning import UnrolledDictionaryLearning
    from .._dense.mixmate import MixMateClustering

    if isinstance(estimator, UnrolledDictionaryLearning):
        family = _Dense()
    elif isinstance(estimator, MixMateClustering):
        family = _MixMate()
    elif isinstance(estimator, ConvolutionalDictionaryLearning):
        family = _Conv()
    else:
        raise TypeError(
            "skunroll.distributed.fit trains UnrolledDictionaryLearning, "
            "MixMateClustering and ConvolutionalDictionaryLearning; got "
            f"{type(estimator).__name__}."
        )
    if sync not in ("gradients", "average"):
        raise ValueError(f"sync must be 'gradients' or 'average'; got {sync!r}.")
    if sync == "average" and not (
        isinstance(family, _Dense)
        and getattr(estimator, "dictionary", "free") == "free"
    ):
        raise ValueError(
            "sync='average' trains UnrolledDictionaryLearning with "
            "dictionary='free'; other estimators and the archetypal dictionary "
            "train with sync='gradients'."
        )
    if not isinstance(local_steps, int) or local_steps < 1:
        raise ValueError(f"local_steps must be an int >= 1; got {local_steps!r}.")
    client = get_client(client)
    stats = DistributedFitStats(measure_bytes=return_stats)
    averaging = local_steps if sync == "average" else None
    _fit_atomic(estimator, family, client, X, rows_per_shard, stats, averaging,
                timeout)  # fmt: skip
    return (estimator, stats) if return_stats else estimator


@atomic
def _fit_atomic(estimator, family, client, X, rows_per_shard, stats, averaging,
                timeout):  # fmt: skip
    start = time.perf_counter()
    estimator._validate_params()
    X = family.validate(estimator, as_dask_array(X, "X"), client)
    prepare = None
    if family.shard_data is not None:
        prepare = functools.partial(family.shard_data, est=estimator)
    shards, bounds = row_shards(client, X, rows_per_shard, prepare, family.shard_units)
    stats.n_shards = len(shards)
    trainer, state, data = family.start(estimator, Rows(X))
    if averaging is None:
        trainer.model = ShardedModel(
            trainer.model, client, shards, bounds, stats, timeout
        )
    else:
        worker_trainer = copy.copy(trainer)
        trainer.batch_size = trainer.batch_size * averaging
        trainer.model = AveragingModel(
            trainer.model, client, shards, bounds, stats, timeout, worker_trainer,
            averaging, functools.partial(family.project, estimator),
        )  # fmt: skip
    try:
        with single_threaded_blas():
            trainer.fit(state, data)
    except Exception as exc:  # a worker lost for good, a cancelled future
        if isinstance(exc, ValueError | FloatingPointError):
            raise
        raise RuntimeError(
            f"distributed training of {type(estimator).__name__} failed "
            f"({type(exc).__name__}: {exc}); nothing was fitted."
        ) from exc
    family.finish(estimator, trainer, state, client, shards)
    stats.seconds = time.perf_counter() - start


def _check_block(estimator, block):
    """On a worker: the checks ``fit`` makes of ``X``, on one block."""
    estimator._validate_X(block, reset=True)
    return True


def _n_units(data):
    return len(data[0])


class _Dense:
    """``UnrolledDictionaryLearning``: shards are blocks of ``X``."""

    shard_data = None  # the block itself
    shard_units = staticmethod(len)

    def validate(self, est, X, client):
        _check_ndim(X, 2)
        est._check_compatible()
        est._warn_deprecated_prior()
        X = _float_dtype(X)
        _check_blocks(client, est, X)
        est._validate_X(np.zeros((1, X.shape[1]), X.dtype), reset=True)
        return X

    def start(self, est, rows):
        trainer = est._trainer()
        with single_threaded_blas():
            state = est._initial_state(rows)
        return trainer, state, rows

    def finish(self, est, trainer, state, client, shards):
        est._set_fitted(state)
        trainer.warn_if_not_converged(state)

    @staticmethod
    def project(est, state):
        from .._parts.dictionaries import project_rows

        project_rows(state.D, est.positive_dict, state.rng)


def _shard_mixmate(block, est):
    """On a worker: a block of ``X`` as MixMate trains on it ``(X, mask)``."""
    return est._validate_X(block, reset=True)


def _mixmate_energies(est, data, D, steps):
    X, mask = data
    with single_threaded_blas():
        return est._energies(X, mask, D, steps)


class _MixMate:
    """``MixMateClustering``: shards are ``(X, mask)`` of blocks of ``X``;
    ``n_init`` must be 1 and the first clustering is that of a subsample
    unless ``init`` is given."""

    shard_data = staticmethod(_shard_mixmate)
    shard_units = staticmethod(_n_units)

    def validate(self, est, X, client):
        _check_ndim(X, 2)
        if est.n_init != 1:
            raise ValueError(
                f"distributed MixMateClustering needs n_init=1; got {est.n_init}."
            )
        X = _float_dtype(X)
        est._validate_X(np.zeros((1, X.shape[1]), X.dtype), reset=True)
        return X

    def start(self, est, rows):
        from sklearn.utils import check_random_state

        if isinstance(est.init, str):
            n = rows.shape[0]
            take = min(n, SUBSAMPLE)
            rng = check_random_state(est.random_state)
            sample = np.sort(rng.choice(n, take, replace=False))
            X, mask = est._validate_X(rows[sample], reset=True)
            warnings.warn(
                f"distributed MixMateClustering starts from the first clustering "
                f"of {take} random rows (init={est.init!r}).",
                UserWarning,
                stacklevel=4,
            )
        else:
            X, mask = rows, None
        rng = check_random_state(est.random_state)
        trainer = est._trainer()
        with single_threaded_blas():
            state = est._initial_state(X, mask, rng)
        return trainer, state, (_MixMateRows(rows, est), None)

    def finish(self, est, trainer, state, client, shards):
        est.__dict__.update(est.fitted_attributes(state))
        futures = [
            client.submit(_mixmate_energies, est, s, state.D, state.steps)
            for s in shards
        ]
        energies = np.concatenate(client.gather(futures))
        est.labels_ = est._labels(energies)
        trainer.warn_if_not_converged(state)


class _MixMateRows(Rows):
    """Rows of ``X`` as MixMate sees them (missing entries zeroed); its
    re-seeding reads ``X[rows]`` and ``mask`` is read alongside."""

    def __init__(self, rows, est):
        super().__init__(rows.array)
        self._est = est

    def __getitem__(self, key):
        X, _ = self._est._validate_X(super().__getitem__(key), reset=False)
        return X


#: rows MixMate's first clustering reads when no ``init`` is given
SUBSAMPLE = 10_000


def _shard_conv(block, est):
    """On a worker: a block of signals cut into the training segments."""
    from .._conv import shapes
    from .._conv.training import segments

    X4 = shapes.to_4d(block, est.kernel_size)
    return segments(X4, None, est.kernel_size, est.segment_size)


class _Conv:
    """``ConvolutionalDictionaryLearning`` (1-D kernels): shards are blocks
    of signals, cut on the workers into the training segments. The codes of
    the previous epoch are not kept as warm starts (they would be as large
    as the data): every epoch encodes from zero, as with
    ``code_warm_start=False``, and equals that local fit."""

    shard_data = staticmethod(_shard_conv)
    shard_units = staticmethod(_n_units)

    def validate(self, est, X, client):
        from .._conv import shapes

        est._validate_params()
        est._warn_deprecated()
        if X.ndim not in (2, 3) or len(shapes.kernel_shape(est.kernel_size)) != 1:
            raise ValueError(
                "distributed ConvolutionalDictionaryLearning takes 1-D signals, "
                "X of shape (n_signals, n_times) or (n_signals, n_channels, "
                f"n_times), with 1-D kernels; got shape {X.shape} and "
                f"kernel_size={est.kernel_size!r}."
            )
        X = _float_dtype(X)
        _check_blocks(client, est, X, _check_signals)
        shapes.check_signals(est, np.asarray(X[:1].compute()), True, True)
        return X

    def start(self, est, rows):
        from .._conv.training import Model

        X = rows.array
        X4 = Rows(X[:, None, None, :] if X.ndim == 2 else X[:, :, None, :])
        model = Model(est)
        trainer = est._trainer(model)
        with single_threaded_blas():
            state = model.initial_state(X4, est._network(est.n_components))
        state.align = est.align_kernels
        return trainer, state, (X4, None)

    def finish(self, est, trainer, state, client, shards):
        est._set_fitted(state)
        trainer.warn_if_not_converged(state)


def _check_signals(est, block):
    from .._conv import shapes

    shapes.check_signals(est, block, True, True)
    return True


def _check_ndim(X, ndim):
    if X.ndim != ndim:
        raise ValueError(f"X must be {ndim}-D; got shape {X.shape}.")


def _float_dtype(X):
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X


def _check_blocks(client, est, X, check=None):
    """``fit``'s checks of ``X`` on every block, on the workers."""
    from dask import delayed

    check = _check_block if check is None else check
    blocks = X.rechunk({i: -1 for i in range(1, X.ndim)}).to_delayed().ravel()
    client.gather(client.compute([delayed(check, pure=True)(est, b) for b in blocks]))
