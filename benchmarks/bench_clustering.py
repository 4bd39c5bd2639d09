"""Clustering benchmark: MixMate vs k-means, Gaussian mixture and spectral.

scikit-learn's bundled ``load_digits`` (1,797 images of 8x8 pixels, 10
classes), features scaled to [0, 1]. Every method runs in this process on the
same data, for several seeds; the table gives the median over the seeds of
the accuracy (clusters matched to classes by the Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``), the normalised mutual information,
the adjusted Rand index and the fit time, with the number of learned
parameters of each model.

MixMate runs with its defaults (``n_components=8`` atoms per cluster,
``alpha=0.1``, ``n_unroll=15``, ``assign="soft"``, ``temperature=0.1``,
``init="kmeans"``, ``n_init=1``, ``learning_rate=0.03``, ``max_iter=100``,
``tol=0``, learned mixing weights), then with ``assign="hard"``. MixMate's
parameters are its dictionaries and its ``k - 1`` free mixing weights. The
numba kernels are compiled (or loaded from the cache) by a small fit before
the timings.

Run ``python benchmarks/bench_clustering.py [--seeds 0 1 2 3 4] [--n-jobs 1]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from skunroll import MixMateClustering
from skunroll.metrics import clustering_accuracy


def methods(n_clusters, n_features, seed, n_jobs):
    """(name, estimator, number of learned parameters) of every method."""
    k, m = n_clusters, n_features
    mixmate = MixMateClustering(n_clusters, random_state=seed, n_jobs=n_jobs)
    p = mixmate.n_components
    return [
        ("KMeans (n_init=10)", KMeans(k, n_init=10, random_state=seed), k * m),
        (
            "GaussianMixture (full)",
            GaussianMixture(k, random_state=seed),
            k * m + k * m * (m + 1) // 2 + k - 1,
        ),
        (
            "SpectralClustering (kNN graph)",
            SpectralClustering(k, affinity="nearest_neighbors", random_state=seed),
            0,  # a graph of the data, no parameters of a model
        ),
        (f"MixMate soft (defaults, {p} atoms/cluster)", mixmate, k * p * m + k - 1),
        (
            "MixMate hard",
            MixMateClustering(
                n_clusters, assign="hard", random_state=seed, n_jobs=n_jobs
            ),
            k * p * m + k - 1,
        ),
    ]


def run(seeds, n_jobs):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    n_clusters = len(np.unique(y))
    MixMateClustering(2, max_iter=1, random_state=0).fit(X[:64])  # compile
    results = {}
    params = {}
    for seed in seeds:
        for name, est, n_params in methods(n_clusters, X.shape[1], seed, n_jobs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                t0 = time.perf_counter()
                labels = est.fit_predict(X)
                elapsed = time.perf_counter() - t0
            scores = (
                clustering_accuracy(y, labels),
                normalized_mutual_info_score(y, labels),
                adjusted_rand_score(y, labels),
                elapsed,
                getattr(est, "n_iter_", 0),
            )
            results.setdefault(name, []).append(scores)
            params[name] = n_params
            print(
                f"seed {seed}  {name:<44} acc {scores[0]:.3f}  nmi {scores[1]:.3f}"
                f"  ari {scores[2]:.3f}  {elapsed:6.2f} s",
                flush=True,
            )
    return results, params, X.shape


def report(results, params, shape, seeds):
    print(
        f"\nload_digits scaled to [0, 1] ({shape[0]} samples, {shape[1]} "
        f"features, 10 classes); medians over seeds {list(seeds)}\n"
    )
    header = ("method", "accuracy", "NMI", "ARI", "time [s]", "parameters")
    rows = []
    for name, scores in results.items():
        med = np.median(np.asarray(scores), axis=0)
        rows.append(
            (
                name,
                f"{med[0]:.3f}",
                f"{med[1]:.3f}",
                f"{med[2]:.3f}",
                f"{med[3]:.2f}",
                f"{params[name]:,}",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line.format(*row))
    kmeans_time = np.median([s[3] for s in results["KMeans (n_init=10)"]])
    for name, scores in results.items():
        if name.startswith("MixMate"):
            ratio = np.median([s[3] for s in scores]) / kmeans_time
            print(f"\n{name}: {ratio:.1f} x the time of KMeans (same process)")
            print(f"  per seed accuracy: {[round(float(s[0]), 3) for s in scores]}")
            print(f"  per seed NMI:      {[round(float(s[1]), 3) for s in scores]}")
            print(f"  epochs:            {[int(s[4]) for s in scores]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    results, params, shape = run(args.seeds, args.n_jobs)
    report(results, params, shape, args.seeds)


if __name__ == "__main__":
    main()
