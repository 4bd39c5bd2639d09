"""Learned unrolled coders against ISTA and FISTA, on held-out data.

The setup of Ablin, Moreau, Massias & Gramfort, "Learning step sizes for
unfolded sparse coding", NeurIPS 2019 (their code, tomMoral/adopty): a
unit-norm Gaussian dictionary of 256 atoms x 64 features, samples ``x = z D``
with dense Gaussian ``z``, each scaled so that ``||x D^T||_inf = 1`` (so
``lambda_max = 1`` for every sample), 10,000 training and 10,000 test
samples, ``lambda = 0.1`` and ``0.8`` (times ``lambda_max``). The figure of
merit is the test objective gap ``F - F*`` of the network's codes, ``F`` the
mean lasso objective ``0.5 ||x - z D||^2 + lambda ||z||_1`` and ``F*`` that of
the exact lasso (``sparse_encode(algorithm="lasso")``, duality-gap certified).

Per depth: ISTA and FISTA (``sparse_encode`` with ``max_iter`` = depth,
``tol=0``), and ``LearnedSparseCoder`` with each parametrisation trained on
the training set for ``--max-iter`` epochs with the default optimiser
(minibatch gradient descent with a backtracking line search; ``"lista"`` and
``"coupled"`` at depths up to 10, by default learning the steps first,
``pretrain="auto"``), plus ``"lista"`` trained from ISTA without that
(``pretrain=None``). Training times are wall times on ``n_jobs=2``; the
machine may be shared, so they are upper bounds.

Targets (issue 15): at lambda = 0.8, ``"step"`` with 10 layers reaches a test
gap at most half of FISTA's at 10 iterations; ``"lista"`` beats FISTA at every
depth <= 10 on held-out data; a 10-layer network trains in <= 30 s.

Run: ``python benchmarks/bench_learned_coders.py [--quick] [--max-iter N]``
"""

import argparse
import time
import warnings

import numpy as np

from skunroll import LearnedSparseCoder, sparse_encode

N_JOBS = 2
DEPTHS = [1, 2, 3, 5, 7, 10, 15, 20, 30]
MATRIX_DEPTHS = [1, 2, 3, 5, 7, 10]


def make_problem(n_train, n_test, n_atoms=256, n_features=64, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_atoms, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)

    def draw(n):
        X = rng.standard_normal((n, n_atoms)) @ D
        return X / np.abs(X @ D.T).max(axis=1, keepdims=True)

    return D, draw(n_train), draw(n_test)


def objective(X, D, Z, lmbd):
    R = X - Z @ D
    return float(np.mean(0.5 * np.sum(R * R, axis=1) + lmbd * np.abs(Z).sum(1)))


def run(lmbd, D, X_train, X_test, depths, matrix_depths, max_iter):
    Z_star = sparse_encode(X_test, D, algorithm="lasso", alpha=lmbd, n_jobs=N_JOBS)
    f_star = objective(X_test, D, Z_star, lmbd)
    gaps, times, fits = {}, {}, {}
    for name in ("ista", "fista"):
        for d in depths:
            Z = sparse_encode(
                X_test, D, algorithm=name, alpha=lmbd, max_iter=d, tol=0,
                n_jobs=N_JOBS,
            )  # fmt: skip
            gaps[name, d] = objective(X_test, D, Z, lmbd) - f_star
    runs = [
        ("step", "step", depths, {}),
        ("alista", "alista", depths, {}),
        ("coupled", "coupled", matrix_depths, {}),
        ("lista", "lista", matrix_depths, {}),
        ("lista, no pretrain", "lista", matrix_depths, {"pretrain": None}),
    ]
    for label, parametrization, ds, extra in runs:
        for d in ds:
            est = LearnedSparseCoder(
                D, n_layers=d, parametrization=parametrization, alpha=lmbd,
                max_iter=max_iter, random_state=0, n_jobs=N_JOBS, **extra,
            )  # fmt: skip
            t0 = time.perf_counter()
            est.fit(X_train)
            times[label, d] = time.perf_counter() - t0
            gaps[label, d] = -est.score(X_test) - f_star
            fits[label, d] = est
            print(
                f"  lambda={lmbd} {label:16s} depth {d:2d}: gap {gaps[label, d]:.3e}"
                f"  train {times[label, d]:6.1f} s  best epoch {est.best_iter_}"
                f"/{est.n_iter_}, step phase {getattr(est, 'pretrain_iter_', 0)}",
                flush=True,
            )
    return f_star, gaps, times, fits


def report(lmbd, f_star, gaps, times, depths):
    labels = [
        "ista", "fista", "step", "alista", "coupled", "lista", "lista, no pretrain"
    ]  # fmt: skip
    print(f"\n### lambda = {lmbd} lambda_max: test gap F - F* (F* = {f_star:.6g})\n")
    print("| depth | " + " | ".join(labels) + " |")
    print("|---:|" + "---:|" * len(labels))
    for d in depths:
        cells = [f"{gaps[lb, d]:.2e}" if (lb, d) in gaps else "" for lb in labels]
        print(f"| {d} | " + " | ".join(cells) + " |")
    print("\ntraining time [s] (n_jobs=2):")
    for lb in labels[2:]:
        row = [f"{d}: {times[lb, d]:.1f}" for d in depths if (lb, d) in times]
        print(f"  {lb:16s} " + ", ".join(row))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    args = parser.parse_args()
    depths = [1, 2, 5, 10] if args.quick else DEPTHS
    matrix_depths = [1, 2, 5, 10] if args.quick else MATRIX_DEPTHS
    D, X_train, X_test = make_problem(args.n_train, args.n_test)
    # compile the kernels once, outside the timings
    LearnedSparseCoder(D, n_layers=2, max_iter=1).fit(X_train[:300])
    warnings.simplefilter("ignore")
    verdicts = []
    for lmbd in (0.1, 0.8):
        f_star, gaps, times, _ = run(
            lmbd, D, X_train, X_test, depths, matrix_depths, args.max_iter
        )
        report(lmbd, f_star, gaps, times, depths)
        if lmbd == 0.8:
            ratio = gaps["step", 10] / gaps["fista", 10]
            verdicts.append(
                f"step(10)/FISTA(10) test gap at lambda=0.8: {ratio:.3g} "
                "(target <= 0.5)"
            )
        for label in ("lista", "lista, no pretrain"):
            beaten = [d for d in matrix_depths if gaps[label, d] < gaps["fista", d]]
            verdicts.append(
                f"{label} beats FISTA at lambda={lmbd} at depths {beaten} of "
                f"{matrix_depths} (target: every depth <= 10 at lambda=0.8)"
            )
        verdicts.append(
            f"10-layer training times at lambda={lmbd}: "
            + ", ".join(
                f"{lb} {times[lb, 10]:.1f} s"
                for lb in ("step", "alista", "coupled", "lista", "lista, no pretrain")
            )
            + " (target <= 30 s)"
        )
    print("\n## Targets\n")
    for v in verdicts:
        print("- " + v)


if __name__ == "__main__":
    main()
