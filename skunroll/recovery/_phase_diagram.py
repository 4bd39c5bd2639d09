"""The phase-diagram runner: fit methods on planted problems, score recovery."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..datasets import make_sparse_coded_data
from ..datasets._dense import _coherence_lower_bound
from ..metrics import atom_recovery_errors, mutual_coherence
from ..metrics import restricted_isometry_constant as _rip
from ._problems import make_coherent_dictionary

#: Columns of the table returned by :func:`recovery_phase_diagram`, in order.
TABLE_COLUMNS = (
    "method",
    "n_nonzero_coefs",
    "coherence_target",
    "coherence",
    "rip_constant",
    "seed",
    "recovery_rate",
    "median_error",
    "fit_time",
    "error",
    "n_samples",
    "n_features",
    "n_components",
    "noise",
)


def _check_methods(methods):
    """``methods`` as a list of ``(name, method)``; estimators or callables."""
    items = list(methods.items()) if isinstance(methods, dict) else None
    if items is None:
        try:
            items = [tuple(item) for item in methods]
        except TypeError:
            items = None
    if not items or any(len(item) != 2 for item in items):
        raise ValueError(
            "methods must be a non-empty dict {name: method} or a list of "
            f"(name, method) pairs, got {methods!r}."
        )
    names = [name for name, _ in items]
    for name, method in items:
        if not isinstance(name, str):
            raise ValueError(f"method names must be strings, got {name!r}.")
        if not (hasattr(method, "fit") or callable(method)):
            raise ValueError(
                f"method {name!r} must be an estimator with fit(X) and a "
                "components_ attribute after it, or a callable "
                f"method(X, D_true, random_state) -> D_est; got {method!r}."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be distinct, got {names}.")
    return items


def _check_grid(values, name, kind, low, high):
    """A non-empty 1-D tuple of distinct numbers in ``[low, high]``."""
    array = np.asarray(values if np.ndim(values) else [values])
    valid = array.ndim == 1 and array.size > 0
    if valid and kind is int:
        valid = np.issubdtype(array.dtype, np.integer)
    elif valid:
        valid = np.issubdtype(array.dtype, np.number) and bool(
            np.all(np.isfinite(array))
        )
    if not valid or np.any((array < low) | (array > high)):
        kind_name = "integers" if kind is int else "numbers"
        raise ValueError(
            f"{name} must be a non-empty sequence of {kind_name} in "
            f"[{low:.6g}, {high:.6g}], got {values!r}."
        )
    if len(np.unique(array)) != array.size:
        raise ValueError(f"{name} must not repeat a value, got {values!r}.")
    return tuple(kind(v) for v in array)


def _seed(base, *indices):
    """A 31-bit seed from the base seed and grid indices (independent streams)."""
    sequence = np.random.SeedSequence([base, *indices])
    return int(sequence.generate_state(1)[0] >> 1)


def _prepare(method, n_components, seed):
    """A fresh clone of an estimator with the run's seed and atom count set."""
    if not hasattr(method, "get_params"):
        return method
    est = clone(method)
    params = est.get_params(deep=False)
    updates = {}
    if "random_state" in params:
        updates["random_state"] = seed
    if "n_components" in params and params["n_components"] is None:
        updates["n_components"] = n_components
    return est.set_params(**updates)


def _fit_components(method, X, D_true, seed):
    if hasattr(method, "fit"):
        method.fit(X)
        return method.components_
    return method(X, D_true.copy(), seed)


def _run_method(method, X, D_true, seed, threshold):
    """Recovery rate, median atom error, fit time and error message of one fit."""
    est = _prepare(method, D_true.shape[0], seed)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            D_est = _fit_components(est, X, D_true, seed)
        elapsed = time.perf_counter() - start
        errors = atom_recovery_errors(D_true, np.asarray(D_est))
    except Exception as exc:  # noqa: BLE001 - reported in the table
        message = f"{type(exc).__name__}: {exc}"
        return np.nan, np.nan, time.perf_counter() - start, message
    return float(np.mean(errors < threshold)), float(np.median(errors)), elapsed, ""


def _run_setting(methods, problem, i_coh, i_sp, seed_index, base):
    """Every method on one planted problem; a list of table rows."""
    coherence = problem["coherences"][i_coh]
    sparsity = problem["sparsities"][i_sp]
    D = make_coherent_dictionary(
        problem["n_components"],
        problem["n_features"],
        coherence,
        random_state=_seed(base, 0, i_coh, seed_index),
    )
    X, D, _ = make_sparse_coded_data(
        problem["n_samples"],
        D,
        n_nonzero_coefs=sparsity,
        code_distribution=problem["code_distribution"],
        noise=problem["noise"],
        random_state=_seed(base, 1, i_coh, i_sp, seed_index),
    )
    X.setflags(write=False)  # a method must not write into the shared data
    run_seed = _seed(base, 2, i_coh, i_sp, seed_index)
    setting = {
        "n_nonzero_coefs": sparsity,
        "coherence_target": coherence,
        "coherence": mutual_coherence(D),
        "rip_constant": _rip(
            D, sparsity, n_trials=problem["rip_trials"], random_state=run_seed
        ),
        "seed": seed_index,
        "n_samples": problem["n_samples"],
        "n_features": problem["n_features"],
        "n_components": problem["n_components"],
        "noise": problem["noise"],
    }
    rows = []
    for name, method in methods:
        rate, median, elapsed, error = _run_method(
            method, X, D, run_seed, problem["threshold"]
        )
        rows.append(
            {
                **setting,
                "method": name,
                "recovery_rate": rate,
                "median_error": median,
                "fit_time": elapsed,
                "error": error,
            }
        )
    return (i_coh, i_sp, seed_index), rows


def _progress(done, total, key, rows, problem, start):
    i_coh, i_sp, seed_index = key
    elapsed = time.perf_counter() - start
    eta = elapsed / done * (total - done)
    scores = ", ".join(
        f"{row['method']} {row['recovery_rate']:.2f} ({row['fit_time']:.1f} s)"
        for row in rows
    )
    print(
        f"[{done}/{total}] sparsity {problem['sparsities'][i_sp]}, coherence "
        f"{problem['coherences'][i_coh]:.3g}, seed {seed_index}: {scores}; "
        f"elapsed {elapsed:.0f} s, left about {eta:.0f} s",
        flush=True,
    )


def _as_columns(rows):
    """Rows (dicts) as a dict of 1-D arrays, in the order of ``TABLE_COLUMNS``."""
    table = {}
    for column in TABLE_COLUMNS:
        values = [row[column] for row in rows]
        if column in ("method", "error"):
            table[column] = np.array(values, dtype=object)
        elif column in ("n_nonzero_coefs", "seed", *TABLE_COLUMNS[-4:-1]):
            table[column] = np.array(values, dtype=np.int64)
        else:
            table[column] = np.array(values, dtype=np.float64)
    return table


@validate_params(
    {
        "methods": [dict, list, tuple],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "n_components": [Interval(Integral, 2, None, closed="left")],
        "sparsities": ["array-like"],
        "coherences": ["array-like"],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "code_distribution": [
            StrOptions({"gaussian", "uniform", "bernoulli_gaussian"})
        ],
        "n_seeds": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="right")],
        "rip_trials": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "as_frame": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def recovery_phase_diagram(
    methods,
    *,
    n_features=32,
    n_components=48,
    sparsities=(1, 2, 3, 4, 6, 8),
    coherences=(0.15, 0.3, 0.45, 0.6, 0.75, 0.9),
    n_samples=1500,
    noise=0.0,
    code_distribution="uniform",
    n_seeds=3,
    threshold=0.1,
    rip_trials=200,
    n_jobs=None,
    verbose=0,
    random_state=0,
    as_frame=False,
):
    r"""Recovery of planted dictionaries over a grid of sparsities and coherences.

    For every coherence :math:`\mu` in ``coherences``, every sparsity
    :math:`s` in ``sparsities`` and every seed, a dictionary of mutual
    coherence :math:`\mu` is planted (:func:`make_coherent_dictionary`: pairs
    of atoms at inner product :math:`\mu`), ``n_samples`` signals with
    exactly :math:`s` non-zero coefficients are drawn from it
    (:func:`skunroll.datasets.make_sparse_coded_data`), and every method
    learns a dictionary from the signals alone. A true atom is recovered when
    the sine of the angle to its matched learned atom
    (:func:`skunroll.metrics.atom_recovery_errors`) is below ``threshold``.

    The same seed gives the same dictionary at every sparsity (only the codes
    change along that axis), and every method sees the same data.

    Parameters
    ----------
    methods : dict {name: method} or list of (name, method) pairs
        The methods to compare. A method is either

        - an estimator with ``fit(X)`` that sets ``components_`` of shape
          ``(n_atoms, n_features)`` (skunroll's, scikit-learn's, anything).
          It is cloned (:func:`sklearn.base.clone`) for every fit; its
          ``random_state`` parameter, if it has one, is set to the run's
          seed, and its ``n_components``, if it has one and it is ``None``, to
          the planted number of atoms. Budgets (epochs, ``tol``) are the
          estimator's own.
        - a callable ``method(X, D_true, random_state) -> D_est``, for
          reference points that are not learners: an oracle that returns
          ``D_true`` (rate 1), a random baseline, or a bound. It receives a
          copy of the planted dictionary, so a learner must not be written
          this way; wrap learners without an estimator interface (SPAMS'
          ``trainDL``) in a small estimator class instead.

        ``X`` is read-only: a method that writes into it fails.
    n_features : int, default=32
        Dimension of the atoms.
    n_components : int, default=48
        Number of planted atoms.
    sparsities : array-like of int, default=(1, 2, 3, 4, 6, 8)
        Non-zero coefficients per signal, each in ``[1, n_components]``.
    coherences : array-like of float, default=(0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
        Mutual coherences of the planted dictionaries, each below 1 and at
        least the Welch bound of the shape.
    n_samples : int, default=1500
        Signals per problem.
    noise : float, default=0.0
        Standard deviation of the white Gaussian noise.
    code_distribution : {"uniform", "gaussian", "bernoulli_gaussian"}, \
            default="uniform"
        Distribution of the codes (see
        :func:`skunroll.datasets.make_sparse_coded_data`); ``"uniform"`` has
        random signs and magnitudes in ``[1, 2]``.
    n_seeds : int, default=3
        Problems (dictionary, codes, noise and method seed) per setting.
    threshold : float in (0, 1], default=0.1
        Largest atom error (sine of the angle) counted as recovered.
    rip_trials : int, default=200
        Random supports of the Monte-Carlo estimate of the restricted
        isometry constant (:func:`skunroll.metrics.restricted_isometry_constant`)
        at the setting's sparsity.
    n_jobs : int, default=None
        Settings (and seeds) run in parallel by joblib processes; ``None``
        means 1, ``-1`` all cores. Results do not depend on it; give the
        methods ``n_jobs=1`` when this is above 1.
    verbose : int, default=0
        Above 0, print a line per finished setting and seed: the rates and fit
        times of the methods, the elapsed time and an estimate of the time
        left.
    random_state : int, RandomState instance or None, default=0
        Seed of everything: an int gives the same table every time.
    as_frame : bool, default=False
        Return a pandas DataFrame instead of a dict (needs pandas).

    Returns
    -------
    table : dict of str to ndarray, or pandas.DataFrame
        One row per method, setting and seed, sorted by method (in the order
        given), coherence, sparsity and seed; the columns, in the order of
        :data:`TABLE_COLUMNS`, are 1-D arrays of equal length:

        - ``method`` (str), ``n_nonzero_coefs`` (int, the sparsity),
          ``coherence_target`` (float), ``seed`` (int, 0 to ``n_seeds - 1``);
        - ``coherence``: the measured mutual coherence of the planted
          dictionary; ``rip_constant``: the Monte-Carlo estimate (a lower
          bound) of its restricted isometry constant at the sparsity;
        - ``recovery_rate``: fraction of atoms recovered; ``median_error``:
          median atom error; ``fit_time``: seconds in ``fit`` (or in the
          callable);
        - ``error``: ``""``, or ``"ExceptionName: message"`` when the method
          raised; the scores of that row are then NaN (a failing method does
          not stop the diagram);
        - ``n_samples``, ``n_features``, ``n_components`` (int), ``noise``
          (float): the problem, so that tables of several runs can be
          concatenated.

        ``ConvergenceWarning`` is silenced in the fits (budgets are meant to
        be short); other warnings are shown.

    Notes
    -----
    ``fit_time`` is wall time in a worker process. The first fit of a
    skunroll estimator in each worker loads its numba kernels from the disk
    cache, or compiles them (tens of seconds) when the cache is cold: fit a
    small estimator once before a timed diagram, as
    ``benchmarks/bench_recovery_phase_diagram.py`` does, and read the median
    of ``fit_time`` rather than its maximum.

    Raises
    ------
    ValueError
        If ``methods`` is empty or holds something that is neither an
        estimator nor a callable, if a sparsity or a coherence is out of
        range, or if ``as_frame=True`` without pandas (ImportError).

    See Also
    --------
    phase_grid : A column of the table as a grid over sparsity and coherence.
    plot_phase_diagram : The grids as images.
    recovery_regime : Sparsities, coherences and noise of a theory regime.

    Examples
    --------
    >>> from sklearn.decomposition import MiniBatchDictionaryLearning
    >>> from skunroll.recovery import recovery_phase_diagram
    >>> table = recovery_phase_diagram(
    ...     {"sklearn": MiniBatchDictionaryLearning(alpha=0.1, max_iter=2)},
    ...     n_features=8, n_components=8, sparsities=[1], coherences=[0.3],
    ...     n_samples=200, n_seeds=1)
    >>> sorted(table) == sorted(TABLE_COLUMNS)
    True
    >>> table["method"].tolist(), table["n_nonzero_coefs"].tolist()
    (['sklearn'], [1])
    """
    items = _check_methods(methods)
    bound, bound_name = _coherence_lower_bound(n_components, n_features)
    problem = {
        "sparsities": _check_grid(sparsities, "sparsities", int, 1, n_components),
        "coherences": _check_grid(coherences, "coherences", float, bound, 1.0),
        "n_features": n_features,
        "n_components": n_components,
        "n_samples": n_samples,
        "noise": float(noise),
        "code_distribution": code_distribution,
        "threshold": threshold,
        "rip_trials": rip_trials,
    }
    if max(problem["coherences"]) >= 1.0:
        raise ValueError(f"coherences must be below 1, got {coherences!r}.")
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the env
            raise ImportError(
                "as_frame=True needs pandas: python -m pip install pandas."
            ) from exc
    base = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    keys = [
        (i_coh, i_sp, seed)
        for i_coh in range(len(problem["coherences"]))
        for i_sp in range(len(problem["sparsities"]))
        for seed in range(n_seeds)
    ]
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_run_setting)(items, problem, *key, base) for key in keys
    )
    by_key, start = {}, time.perf_counter()
    for done, (key, rows) in enumerate(results, start=1):
        by_key[key] = rows
        if verbose:
            _progress(done, len(keys), key, rows, problem, start)
    rows = [by_key[key][m] for m in range(len(items)) for key in keys]
    table = _as_columns(rows)
    return pd.DataFrame(table) if as_frame else table


def phase_grid(table, method, *, value="recovery_rate", aggregate="median"):
    """One column of a phase-diagram table as a sparsity x coherence grid.

    Parameters
    ----------
    table : dict of str to array-like, or pandas.DataFrame
        The table of :func:`recovery_phase_diagram`.
    method : str
        The method whose rows to take.
    value : str, default="recovery_rate"
        The numeric column to aggregate.
    aggregate : {"median", "mean", "min", "max"}, default="median"
        How to aggregate the seeds of a setting (NaN, from failed fits, is
        ignored; a setting where every fit failed gives NaN).

    Returns
    -------
    sparsities : ndarray of shape (n_sparsities,)
        The sparsities, increasing (the rows of ``grid``).
    coherences : ndarray of shape (n_coherences,)
        The target coherences, increasing (the columns of ``grid``).
    grid : ndarray of shape (n_sparsities, n_coherences)
        The aggregated values.

    Examples
    --------
    >>> table = {"method": ["a", "a", "a"], "n_nonzero_coefs": [1, 1, 2],
    ...          "coherence_target": [0.3, 0.3, 0.3],
    ...          "recovery_rate": [1.0, 0.5, 0.0]}
    >>> s, mu, grid = phase_grid(table, "a", aggregate="mean")
    >>> s.tolist(), mu.tolist(), grid.tolist()
    ([1, 2], [0.3], [[0.75], [0.0]])
    """
    functions = {
        "median": np.nanmedian,
        "mean": np.nanmean,
        "min": np.nanmin,
        "max": np.nanmax,
    }
    if aggregate not in functions:
        raise ValueError(
            f"aggregate must be one of {sorted(functions)}, got {aggregate!r}."
        )
    for column in ("method", "n_nonzero_coefs", "coherence_target", value):
        if column not in table:
            raise ValueError(f"table has no column {column!r}.")
    names = np.asarray(table["method"], dtype=object)
    if method not in set(names.tolist()):
        raise ValueError(
            f"method {method!r} is not in the table; its methods are "
            f"{sorted(set(names.tolist()))}."
        )
    keep = names == method
    sparsity = np.asarray(table["n_nonzero_coefs"])[keep]
    coherence = np.asarray(table["coherence_target"], dtype=np.float64)[keep]
    values = np.asarray(table[value], dtype=np.float64)[keep]
    sparsities, coherences = np.unique(sparsity), np.unique(coherence)
    grid = np.full((len(sparsities), len(coherences)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN settings
        for i, s in enumerate(sparsities):
            for j, mu in enumerate(coherences):
                cell = values[(sparsity == s) & (coherence == mu)]
                if cell.size:
                    grid[i, j] = functions[aggregate](cell)
    return sparsities, coherences, grid
