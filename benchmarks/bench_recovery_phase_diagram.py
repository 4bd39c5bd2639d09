"""Phase diagrams of dictionary recovery: skunroll's gradients, SPAMS, scikit-learn.

Each method learns the dictionary of planted problems over a 6 x 6 grid of
sparsities (non-zeros per sample) and mutual coherences, 3 seeds per setting
(:func:`skunroll.recovery.recovery_phase_diagram`): 48 atoms in dimension 32,
planted by :func:`skunroll.recovery.make_coherent_dictionary` (pairs of atoms
at inner product mu), 4,000 samples with codes of random sign and magnitude in
[1, 2], no noise (the incoherent regime) or ``--noise``. Every method
minimises the same lasso cost (per sample ``0.5 ||x - z D||^2 + 0.1 ||z||_1``,
unit-norm atoms) with minibatches of 128 and the same budget of 15 epochs
(passes over the data; SPAMS: 15 * 4000 / 128 iterations), no early stopping.
An atom is recovered when the sine of the angle to its matched learned atom is
below 0.1.

Settings run in parallel on ``--n-jobs`` processes (2), each method on one
thread. The script prints, per method, the grid of median recovery rates over
the seeds and the wall time of the whole diagram, then the median fit time.

Run: ``python benchmarks/bench_recovery_phase_diagram.py [--methods
dec,ae-ls,auto,spams,sklearn] [--seeds 3] [--n-jobs 2] [--save table.csv]``.
``--quick``: a 3 x 3 grid with one seed (a smoke test).
"""

import argparse
import os
import platform
import time

import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.decomposition import MiniBatchDictionaryLearning

import skunroll
from skunroll import UnrolledDictionaryLearning
from skunroll.recovery import phase_grid, recovery_phase_diagram

ALPHA = 0.1
BATCH_SIZE = 128
EPOCHS = 15
PROBLEM = {
    "n_features": 32,
    "n_components": 48,
    "n_samples": 4000,
    "sparsities": (1, 2, 3, 4, 6, 8),
    "coherences": (0.15, 0.3, 0.45, 0.6, 0.75, 0.9),
    "code_distribution": "uniform",
}


class SpamsTrainDL(BaseEstimator):
    """SPAMS' ``trainDL`` (Mairal et al.'s online algorithm) as an estimator.

    ``mode=2``: per sample ``0.5 ||x - D a||^2 + lambda1 ||a||_1`` with
    ``||d_j|| <= 1`` (lambda2 keeps its negligible default), so ``lambda1`` is
    skunroll's and scikit-learn's ``alpha``. SPAMS takes no seed; the seed
    permutes the samples, which changes its initial atoms (drawn from the
    data) and the order of its minibatches. ``n_epochs`` passes of
    ``batch_size`` samples per iteration.
    """

    def __init__(self, n_components=None, alpha=0.1, n_epochs=15, batch_size=128,
                 random_state=None):  # fmt: skip
        self.n_components = n_components
        self.alpha = alpha
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y=None):
        import spams

        X = np.asarray(X, dtype=np.float64)
        order = np.random.RandomState(self.random_state).permutation(X.shape[0])
        n_iter = int(np.ceil(self.n_epochs * X.shape[0] / self.batch_size))
        D = spams.trainDL(
            np.asfortranarray(X[order].T),  # columns are samples
            K=self.n_components,
            lambda1=self.alpha,
            mode=2,
            batchsize=self.batch_size,
            iter=n_iter,
            numThreads=1,
            verbose=False,
        )
        self.components_ = np.ascontiguousarray(D.T)
        return self


def make_methods(epochs):
    def unrolled(gradient):
        return UnrolledDictionaryLearning(
            alpha=ALPHA, gradient=gradient, max_iter=epochs, tol=0.0,
            batch_size=BATCH_SIZE, n_jobs=1,
        )  # fmt: skip

    return {
        "skunroll dec": unrolled("dec"),
        "skunroll ae-ls": unrolled("ae-ls"),
        "skunroll auto": unrolled("auto"),
        "SPAMS trainDL": SpamsTrainDL(
            alpha=ALPHA, n_epochs=epochs, batch_size=BATCH_SIZE
        ),  # fmt: skip
        # scikit-learn: per sample 0.5 ||x - z D||^2 + alpha ||z||_1 too;
        # "cd" (lars was 9x slower here); early stopping off.
        "scikit-learn MiniBatchDL": MiniBatchDictionaryLearning(
            alpha=ALPHA,
            batch_size=BATCH_SIZE,
            max_iter=epochs,
            tol=0.0,
            max_no_improvement=None,
            fit_algorithm="cd",
        ),  # fmt: skip
    }


KEYS = {
    "dec": "skunroll dec",
    "ae-ls": "skunroll ae-ls",
    "auto": "skunroll auto",
    "spams": "SPAMS trainDL",
    "sklearn": "scikit-learn MiniBatchDL",
}


def print_grid(table, name):
    sparsities, coherences, grid = phase_grid(table, name)
    print("  s \\ mu " + "".join(f"{c:>6.2f}" for c in coherences))
    for s, row in zip(sparsities[::-1], grid[::-1], strict=True):
        print(f"  {s:>6d} " + "".join(f"{v:>6.2f}" for v in row))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="dec,ae-ls,auto,spams,sklearn")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", default=None, help="CSV file for the table")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_dictionary_...

    problem = dict(PROBLEM, noise=args.noise)
    if args.quick:
        problem.update(sparsities=(1, 3, 6), coherences=(0.15, 0.45, 0.9))
        args.seeds = 1
    all_methods = make_methods(args.epochs)
    names = [KEYS[key] for key in args.methods.split(",")]
    print(
        f"{len(problem['sparsities'])} x {len(problem['coherences'])} settings x "
        f"{args.seeds} seeds; {problem['n_components']} atoms in dimension "
        f"{problem['n_features']}, {problem['n_samples']} samples, noise "
        f"{args.noise}; alpha {ALPHA}, batch {BATCH_SIZE}, {args.epochs} epochs; "
        f"n_jobs {args.n_jobs}"
    )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, skunroll {skunroll.__version__}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    # Compile (or load from cache) skunroll's kernels in this process: the
    # workers load them from numba's cache.
    rng = np.random.default_rng(0)
    warm_up = UnrolledDictionaryLearning(8, max_iter=1, tol=0.0)
    warm_up.fit(rng.standard_normal((64, 32)))
    tables = []
    for name in names:
        start = time.perf_counter()
        table = recovery_phase_diagram(
            {name: all_methods[name]},
            **problem,
            n_seeds=args.seeds,
            n_jobs=args.n_jobs,
            verbose=args.verbose,
            random_state=0,
        )
        wall = time.perf_counter() - start
        tables.append(table)
        failed = int(np.count_nonzero(table["error"] != ""))
        print(
            f"\n{name}: wall time {wall:.1f} s for {len(table['method'])} fits "
            f"(median fit {np.median(table['fit_time']):.2f} s, failed fits "
            f"{failed}, load {os.getloadavg()[0]:.2f}); median recovery rate:"
        )
        print_grid(table, name)
    if args.save:
        import pandas as pd

        pd.concat([pd.DataFrame(t) for t in tables]).to_csv(args.save, index=False)
        print(f"table saved to {args.save}")


if __name__ == "__main__":
    main()
