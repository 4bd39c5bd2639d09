"""Sparse coding against a fixed dictionary: skunroll vs scikit-learn vs SPAMS.

The problem of the foundation issue: 20,000 samples, 64 features, a 256-atom
unit-norm Gaussian dictionary, 5-sparse Gaussian codes, noise 0.01, lasso with
alpha 0.1 and 0.02 (objective ``0.5 ||x - z D||^2 + alpha ||z||_1`` per sample,
the same for every solver), and OMP with 5 atoms. All solvers run in this
process on the same data with 2 threads. Times are medians of repeated runs
(after one warm-up run, so numba compilation is excluded and reported apart).
Solvers slower than 1 s are timed once.
The relative objective gap is ``(F - F*) / F*`` with ``F`` the objective summed
over samples and ``F*`` the best objective any solver reached.

Run: ``python benchmarks/bench_sparse_coding.py [--n-samples N] [--repeats R]``
(SPAMS comes from ``pip install skunroll[bench]``; it is skipped if it does not
import).
"""

import argparse
import time

import numpy as np
from sklearn.decomposition import SparseCoder

from skunroll import sparse_encode
from skunroll.datasets import make_dictionary, make_sparse_coded_data

try:
    import spams
except ImportError:  # pragma: no cover - optional competitor
    spams = None

N_JOBS = 2


def timed(fn, repeats):
    """Median wall time of ``repeats`` runs; returns (t, out).

    The kernels are compiled before any timing (see ``main``). A solver whose
    first run takes over a second is timed by that run alone; faster ones get
    that run as a warm-up and then ``repeats`` timed runs.
    """
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    if first > 1.0:
        return first, out
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def lasso_objective(X, D, Z, alpha):
    return float(0.5 * ((X - Z @ D) ** 2).sum() + alpha * np.abs(Z).sum())


def lasso_solvers(X, D, alpha):
    solvers = {
        "skunroll lasso": lambda: sparse_encode(X, D, alpha=alpha, n_jobs=N_JOBS),
        "skunroll fista (tol 1e-6)": lambda: sparse_encode(
            X, D, algorithm="fista", alpha=alpha, n_jobs=N_JOBS, max_iter=5000
        ),
        "skunroll unrolled (T=50)": lambda: sparse_encode(
            X, D, algorithm="unrolled", alpha=alpha, n_unroll=50, n_jobs=N_JOBS
        ),
    }
    for algo in ("lasso_cd", "lasso_lars"):
        coder = SparseCoder(
            D,
            transform_algorithm=algo,
            transform_alpha=alpha,
            transform_max_iter=10_000,
            n_jobs=N_JOBS,
        )
        solvers[f"sklearn {algo}"] = (lambda c: lambda: c.transform(X))(coder)
    if spams is not None:
        Xf, Df = np.asfortranarray(X.T), np.asfortranarray(D.T)
        solvers["SPAMS lasso"] = lambda: (
            spams.lasso(Xf, D=Df, lambda1=alpha, lambda2=0.0, mode=2, numThreads=N_JOBS)
            .toarray()
            .T
        )
    return solvers


def omp_solvers(X, D, k):
    solvers = {
        "skunroll omp": lambda: sparse_encode(
            X, D, algorithm="omp", n_nonzero_coefs=k, n_jobs=N_JOBS
        ),
    }
    coder = SparseCoder(
        D, transform_algorithm="omp", transform_n_nonzero_coefs=k, n_jobs=N_JOBS
    )
    solvers["sklearn omp"] = lambda: coder.transform(X)
    if spams is not None:
        Xf, Df = np.asfortranarray(X.T), np.asfortranarray(D.T)
        solvers["SPAMS omp"] = lambda: (
            spams.omp(Xf, D=Df, L=k, numThreads=N_JOBS).toarray().T
        )
    return solvers


def run_lasso(X, D, alpha, repeats):
    rows = {}
    for name, fn in lasso_solvers(X, D, alpha).items():
        t, Z = timed(fn, repeats)
        rows[name] = (t, lasso_objective(X, D, Z, alpha), (Z != 0).sum(1).mean())
    best = min(obj for _, obj, _ in rows.values())
    ref = rows["skunroll lasso"][0]
    print(f"\nlasso, alpha={alpha}   (F* = {best:.6f})")
    print(
        f"{'solver':28s} {'time [s]':>9s} {'rel. gap':>10s} {'nnz':>6s} "
        f"{'time / skunroll lasso':>22s}"
    )
    for name, (t, obj, nnz) in rows.items():
        print(
            f"{name:28s} {t:9.4f} {(obj - best) / best:10.1e} {nnz:6.2f} "
            f"{t / ref:22.2f}"
        )
    return rows


def run_omp(X, D, k, repeats):
    rows = {}
    for name, fn in omp_solvers(X, D, k).items():
        t, Z = timed(fn, repeats)
        rows[name] = (t, float(((X - Z @ D) ** 2).sum() / (X**2).sum()))
    ref = rows["skunroll omp"][0]
    print(f"\nomp, n_nonzero_coefs={k}")
    print(
        f"{'solver':28s} {'time [s]':>9s} {'rel. residual':>14s} "
        f"{'time / skunroll omp':>20s}"
    )
    for name, (t, res) in rows.items():
        print(f"{name:28s} {t:9.4f} {res:14.6f} {t / ref:20.2f}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    D = make_dictionary(256, 64, kind="gaussian", random_state=0)
    X, D, _ = make_sparse_coded_data(
        args.n_samples, D, n_nonzero_coefs=5, noise=0.01, random_state=0
    )
    t0 = time.perf_counter()
    for algorithm in ("lasso", "fista", "omp"):
        sparse_encode(X[:10], D, algorithm=algorithm, alpha=0.1, n_nonzero_coefs=5)
    print(
        f"X {X.shape}, dictionary {D.shape}, {N_JOBS} threads; SPAMS "
        f"{'available' if spams else 'NOT available'}; first skunroll calls "
        f"(numba compile or cache load) {time.perf_counter() - t0:.1f} s"
    )
    for alpha in (0.1, 0.02):
        run_lasso(X, D, alpha, args.repeats)
    run_omp(X, D, 5, args.repeats)


if __name__ == "__main__":
    main()
