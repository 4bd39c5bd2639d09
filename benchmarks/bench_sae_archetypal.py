"""Archetypal vs unconstrained dictionaries: stability over seeds, recovery.

Part (b) of the SAE benchmark (issue 14). Data: sparse convex mixtures of 16
planted unit-norm archetypes in 32 dimensions
(:func:`skunroll.datasets.make_archetypal_data`, 5,000 samples, seed 0), in
two problems:

* ``complete``: 16 atoms, at most 3 archetypes per sample, noise 0.01,
  ``alpha=0.02``;
* ``overcomplete``: 32 atoms, at most 4 archetypes per sample, noise 0.05,
  ``alpha=0.1`` (about the noise level times ``sqrt(2 log 32)``).

Every method is :class:`skunroll.UnrolledDictionaryLearning` with the same
settings (non-negative codes, FISTA, ``max_iter=50``, the
default ``tol``, ``learning_rate`` and ``gradient``) and one dictionary
parametrisation: ``free`` (unit-norm atoms), ``A-SAE`` (``dictionary=
"archetypal"``, ``delta=0``), ``RA-SAE`` (``delta=0.1``); scikit-learn's
``MiniBatchDictionaryLearning`` (same ``alpha``, non-negative lasso codes)
is the unconstrained reference outside skunroll (its fits start from a
randomized SVD of the data).

Stability is measured as the published critique of A-SAE asks: the 5 fits
of a method differ in ``random_state``, which draws the candidates (the
k-means subsample and its seeds), the initial dictionary and the minibatch
order; with ``--subsets`` (the default) each fit also sees its own random
80 % of the samples. For every pair of fits, the stability is
:func:`skunroll.metrics.dictionary_stability` (Hungarian-matched absolute
cosine) of the two *initial* dictionaries ("before", the ones the fits start
from, as the estimator builds them) and of the two fitted ones ("after"); the
table gives medians over the 10 pairs. Two more rows show what a shared
initialisation does: ``free, shared init`` (every seed starts from the seed-0
initial dictionary, ``dict_init``) and ``A-SAE, shared C`` (every seed uses
the seed-0 candidates, ``candidates=``).

Recovery is :func:`skunroll.metrics.matched_cosine` of the planted
archetypes against the fitted atoms (median and worst of the 5 seeds); R^2
(:func:`skunroll.metrics.explained_variance`) and the mean L0 are on all
samples; times are medians of single fits, all in this process.

Run: ``python benchmarks/bench_sae_archetypal.py [--seeds 5] [--quick]
[--no-subsets]``.
"""

import argparse
import itertools
import os
import time
import warnings

import numpy as np
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_archetypal_data
from skunroll.metrics import (
    dictionary_stability,
    explained_variance,
    matched_cosine,
    mean_l0,
)

COMMON = {"positive_code": True, "max_iter": 50}
PROBLEMS = {
    "complete": {"n_components": 16, "n_nonzero_coefs": 3, "noise": 0.01,
                 "alpha": 0.02},
    "overcomplete": {"n_components": 32, "n_nonzero_coefs": 4, "noise": 0.05,
                     "alpha": 0.1},
}  # fmt: skip
METHODS = {
    "free": {},
    "A-SAE": {"dictionary": "archetypal", "delta": 0.0},
    "RA-SAE (delta 0.1)": {"dictionary": "archetypal", "delta": 0.1},
    "free, shared init": {"shared": "dict_init"},
    "A-SAE, shared C": {"dictionary": "archetypal", "shared": "candidates"},
    "sklearn MiniBatchDL": {"sklearn": True},
}


def _initial_state(est, X):
    """The training state ``est.fit(X)`` starts from (the estimator's own
    initialisation, drawn from its ``random_state``)."""
    X = check_array(X, dtype=np.float64, order="C")
    return est._initial_state(X)  # private: the benchmark's only way in


def _subset(X, seed, fraction):
    if fraction >= 1:
        return X
    rng = np.random.default_rng(1000 + seed)
    return X[np.sort(rng.choice(len(X), int(fraction * len(X)), replace=False))]


def _fit(method, n_components, alpha, X, seed, shared):
    params = {k: v for k, v in METHODS[method].items() if k not in ("shared",)}
    if params.pop("sklearn", False):
        est = MiniBatchDictionaryLearning(
            n_components, alpha=alpha, positive_code=True, max_iter=50,
            fit_algorithm="cd", batch_size=256, transform_algorithm="lasso_cd",
            transform_alpha=alpha,
            random_state=seed,
        )  # fmt: skip
        # the dictionary its fit starts from (private: the only way in): a
        # randomized SVD of X, the first draw of its random state
        est._check_params(X)
        init = est._initialize_dict(X, check_random_state(seed))
        t0 = time.perf_counter()
        est.fit(X)
        return est, init, time.perf_counter() - t0
    kind = METHODS[method].get("shared")
    if kind is not None:
        params[kind] = shared[kind]
    est = UnrolledDictionaryLearning(
        n_components, alpha=alpha, random_state=seed, **COMMON, **params
    )
    init = _initial_state(est, X).D.copy()
    t0 = time.perf_counter()
    est.fit(X)
    return est, init, time.perf_counter() - t0


def _shared(n_components, X):
    """The seed-0 initial dictionary and seed-0 candidates."""
    free = UnrolledDictionaryLearning(n_components, random_state=0)
    arch = UnrolledDictionaryLearning(
        n_components, random_state=0, dictionary="archetypal"
    )
    return {
        "dict_init": _initial_state(free, X).D.copy(),
        "candidates": _initial_state(arch, X).candidates.copy(),
    }


def _pairs(dicts):
    return [dictionary_stability(a, b) for a, b in itertools.combinations(dicts, 2)]


def run(problem, n_seeds, fraction, n_samples):
    spec = PROBLEMS[problem]
    X, A, _ = make_archetypal_data(
        n_samples, 32, 16, n_nonzero_coefs=spec["n_nonzero_coefs"],
        noise=spec["noise"], random_state=0,
    )  # fmt: skip
    k = spec["n_components"]
    shared = _shared(k, X)
    rows = []
    for method in METHODS:
        inits, fits, rec, r2, l0, times = [], [], [], [], [], []
        for seed in range(n_seeds):
            X_seed = _subset(X, seed, fraction)
            est, init, elapsed = _fit(method, k, spec["alpha"], X_seed, seed, shared)
            codes = est.transform(X)
            inits.append(init)
            fits.append(est.components_)
            rec.append(matched_cosine(A, est.components_))
            r2.append(explained_variance(X, codes @ est.components_))
            l0.append(mean_l0(codes))
            times.append(elapsed)
        before = np.median(_pairs(inits)) if inits[0] is not None else np.nan
        after = np.median(_pairs(fits))
        rows.append(
            (method, before, after, np.median(rec), np.min(rec), np.median(r2),
             np.median(l0), np.median(times))
        )  # fmt: skip
    return rows


def _print(problem, fraction, rows):
    data = "each seed on its own 80 % subset" if fraction < 1 else "all seeds on X"
    print(f"\n### {problem} ({data})\n")
    print(
        "| method | stability before | stability after | after / before | "
        "recovery median | recovery worst | R^2 | mean L0 | fit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method, before, after, rec, worst, r2, l0, t in rows:
        b = "n/a" if np.isnan(before) else f"{before:.3f}"
        ratio = "n/a" if np.isnan(before) else f"{after / before:.2f}"
        print(
            f"| {method} | {b} | {after:.3f} | {ratio} | {rec:.3f} | {worst:.3f} "
            f"| {r2:.4f} | {l0:.2f} | {t:.2f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 samples")
    parser.add_argument("--no-subsets", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    n_samples = 2000 if args.quick else 5000
    fractions = [1.0] if args.no_subsets else [1.0, 0.8]
    print(f"load before: {os.getloadavg()[0]:.2f}")
    # compile the numba kernels before any timing
    X, _, _ = make_archetypal_data(300, 32, 16, random_state=0)
    for kw in ({}, {"dictionary": "archetypal"}):
        UnrolledDictionaryLearning(8, max_iter=1, tol=0, **kw).fit(X)
    for problem in PROBLEMS:
        for fraction in fractions:
            rows = run(problem, args.seeds, fraction, n_samples)
            _print(problem, fraction, rows)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
