"""``python -m skunroll demo``: an end-to-end showcase on built-in data.

Each section plants a problem with a known answer, runs skunroll and its
scikit-learn counterpart in this process on the same data, and prints one
table. Sections are added as estimators land.
"""

import time
import warnings

import numpy as np
import scipy.fft
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, MiniBatchDictionaryLearning, SparseCoder
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ARDRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from . import (
    ConvolutionalDictionaryLearning,
    MixMateClustering,
    SparseBayesianLearning,
    UnrolledDictionaryLearning,
    sparse_encode,
)
from ._conv.events import event_dtype
from .datasets import (
    make_dictionary,
    make_dictionary_mixture,
    make_sparse_coded_data,
    make_spike_recording,
)
from .metrics import (
    atom_recovery_errors,
    clustering_accuracy,
    event_detection_f1,
    support_f1,
)
from .utils import subsampled_dct


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _warm_up(fn):
    """Time a first small call (numba compile or cache load), its warnings
    (a two-iteration fit does not converge) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _timed(fn)


def _table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt.format(*row))


def sparse_coding_section(n_samples=5000, n_jobs=2, random_state=0):
    """Planted-dictionary sparse coding: support recovery and time vs sklearn."""
    D = make_dictionary(256, 64, kind="gaussian", random_state=random_state)
    X, D, codes = make_sparse_coded_data(
        n_samples, D, n_nonzero_coefs=5, code_distribution="uniform",
        noise=0.01, random_state=random_state,
    )  # fmt: skip
    alpha = 0.1
    # compile (or load from cache) the kernels outside the timings
    t_compile, _ = _warm_up(
        lambda: [
            sparse_encode(X[:4], D, algorithm=a, alpha=alpha, n_nonzero_coefs=5)
            for a in ("lasso", "unrolled", "omp")
        ]
    )

    def sk(algo):
        coder = SparseCoder(
            D, transform_algorithm=algo, transform_alpha=alpha,
            transform_n_nonzero_coefs=5, n_jobs=n_jobs,
        )  # fmt: skip
        return coder.transform

    methods = [
        ("skunroll lasso (exact)", lambda: sparse_encode(
            X, D, algorithm="lasso", alpha=alpha, n_jobs=n_jobs)),
        ("sklearn lasso_cd", lambda: sk("lasso_cd")(X)),
        ("skunroll unrolled (T=50)", lambda: sparse_encode(
            X, D, algorithm="unrolled", alpha=alpha, n_jobs=n_jobs)),
        ("skunroll omp (k=5)", lambda: sparse_encode(
            X, D, algorithm="omp", n_nonzero_coefs=5, n_jobs=n_jobs)),
        ("sklearn omp (k=5)", lambda: sk("omp")(X)),
    ]  # fmt: skip
    rows = []
    for name, fn in methods:
        t, Z = _timed(fn)
        err = np.linalg.norm(Z - codes) / np.linalg.norm(codes)
        f1 = support_f1(codes, Z, atol=1e-3 * np.abs(codes).max())
        rows.append((name, f"{t:.3f}", f"{f1:.3f}", f"{err:.3f}"))
    _table(
        f"Sparse coding of {n_samples} samples on a planted 256-atom dictionary "
        f"(64 features, 5-sparse codes, noise 0.01, alpha={alpha}, {n_jobs} "
        f"threads; first calls incl. numba compile/cache load: {t_compile:.1f} s)",
        ("method", "time [s]", "support F1", "code rel. error"),
        rows,
    )


def dictionary_recovery_section(n_samples=10000, n_jobs=2, random_state=0):
    """Planted-dictionary learning: atoms recovered and time vs sklearn."""
    D = make_dictionary(64, 32, kind="gaussian", random_state=random_state)
    X, D, _ = make_sparse_coded_data(
        n_samples, D, n_nonzero_coefs=3, code_distribution="uniform",
        noise=0.01, random_state=random_state,
    )  # fmt: skip
    alpha = 0.1
    t_compile, _ = _warm_up(
        lambda: UnrolledDictionaryLearning(8, max_iter=1, tol=0).fit(X[:64])
    )
    ours = UnrolledDictionaryLearning(
        64, alpha=alpha, max_iter=30, random_state=random_state, n_jobs=n_jobs
    )
    theirs = MiniBatchDictionaryLearning(
        64, alpha=alpha, batch_size=256, max_iter=3, random_state=random_state
    )
    rows = []
    for name, est in [
        (f"skunroll UnrolledDictionaryLearning (T={ours.n_unroll})", ours),
        ("sklearn MiniBatchDictionaryLearning (3 epochs)", theirs),
    ]:
        t, _ = _timed(lambda est=est: est.fit(X))
        err = atom_recovery_errors(D, est.components_)
        rows.append((name, f"{t:.2f}", f"{np.mean(err < 0.1):.1%}",
                     f"{np.median(err):.4f}"))  # fmt: skip
    _table(
        f"Dictionary learning on {n_samples} samples of a planted 64-atom "
        f"dictionary (32 features, 3-sparse codes, noise 0.01, alpha={alpha}, "
        f"{n_jobs} threads; a first small fit incl. numba compile/cache load: "
        f"{t_compile:.1f} s)",
        ("method", "time [s]", "atoms recovered", "median atom error"),
        rows,
    )


def _accuracy(y, labels):
    return clustering_accuracy(y, labels)


def clustering_section(n_jobs=2, random_state=0):
    """Digits and a planted union of dictionaries: MixMate vs sklearn."""
    X_digits, y_digits = load_digits(return_X_y=True)
    X_digits = X_digits / 16.0
    X_planted, y_planted, _, _ = make_dictionary_mixture(
        1500, 20, n_clusters=3, n_components=4, n_nonzero_coefs=2, noise=0.01,
        random_state=random_state,
    )  # fmt: skip
    t_compile, _ = _warm_up(
        lambda: MixMateClustering(2, max_iter=1, tol=0).fit(X_digits[:64])
    )

    def estimators(k, m, planted):
        # planted: k-means starts are poor when the clusters share their
        # mean; the best of 8 short fits (as in the tests) finds the clusters
        extra = {"n_init": 8, "max_iter": 20, "batch_size": 64} if planted else {}
        mixmate = MixMateClustering(
            k,
            n_components=4 if planted else 8,
            random_state=random_state,
            n_jobs=n_jobs,
            **extra,
        )
        return [
            ("sklearn KMeans", KMeans(k, n_init=10, random_state=random_state),
             k * m),
            ("sklearn GaussianMixture", GaussianMixture(k, random_state=random_state),
             k * m + k * m * (m + 1) // 2 + k - 1),
            ("sklearn SpectralClustering (kNN)", SpectralClustering(
                k, affinity="nearest_neighbors", random_state=random_state), 0),
            ("skunroll MixMateClustering", mixmate,
             k * mixmate.n_components * m + k - 1),
        ]  # fmt: skip

    rows = []
    planted = dict(
        (name, (est, n))
        for name, est, n in estimators(3, X_planted.shape[1], planted=True)
    )
    for name, est, n_params in estimators(10, X_digits.shape[1], planted=False):
        t, labels = _timed(lambda est=est: est.fit_predict(X_digits))
        planted_est = planted[name][0]
        planted_ari = adjusted_rand_score(y_planted, planted_est.fit_predict(X_planted))
        rows.append((
            name, f"{t:.2f}", f"{_accuracy(y_digits, labels):.3f}",
            f"{normalized_mutual_info_score(y_digits, labels):.3f}",
            f"{n_params:,}", f"{planted_ari:.3f}",
        ))  # fmt: skip
    _table(
        "Clustering: load_digits scaled to [0, 1] (1797 images, 10 classes; "
        "accuracy after Hungarian matching) and a planted union of three "
        "4-atom dictionaries whose clusters share their mean (1500 samples, 20 "
        f"features; ARI). {n_jobs} threads; a first small fit incl. numba "
        f"compile/cache load: {t_compile:.1f} s",
        ("method", "digits time [s]", "digits acc", "digits NMI", "parameters",
         "planted ARI"),
        rows,
    )  # fmt: skip


def sbl_section(n_samples=256, n_features=1024, n_nonzero=32, n_jobs=2,
                random_state=0):  # fmt: skip
    """Sparse Bayesian learning through a subsampled DCT: CoFEM vs ARDRegression."""
    rng = np.random.default_rng(random_state)
    p, n = n_features, n_samples
    z = np.zeros(p)
    z[rng.choice(p, n_nonzero, replace=False)] = rng.standard_normal(n_nonzero)
    rows = np.sort(rng.choice(p, n, replace=False))
    op = subsampled_dct(rows, p)
    y = op.matvec(z) + 0.01 * rng.standard_normal(n)
    Phi = scipy.fft.dct(np.eye(p), norm="ortho", axis=0)[rows]
    common = {"fit_intercept": False, "random_state": random_state}
    t_compile, _ = _warm_up(
        lambda: SparseBayesianLearning(solver="cofem", max_iter=2, **common).fit(
            Phi[:32, :64], y[:32]
        )
    )
    methods = [
        ("skunroll SBL CoFEM (DCT operator)",
         lambda: SparseBayesianLearning(solver="cofem", **common).fit(op, y)),
        ("skunroll SBL CoFEM (dense)",
         lambda: SparseBayesianLearning(solver="cofem", n_jobs=n_jobs,
                                        **common).fit(Phi, y)),
        ("skunroll SBL exact EM (dense)",
         lambda: SparseBayesianLearning(solver="em", **common).fit(Phi, y)),
        ("sklearn ARDRegression (dense)",
         lambda: ARDRegression(fit_intercept=False).fit(Phi, y)),
    ]  # fmt: skip
    out = []
    for name, fit in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, est = _timed(fit)
        err = np.linalg.norm(est.coef_ - z) / np.linalg.norm(z)
        f1 = support_f1(z[None], est.coef_[None], atol=0.05)
        out.append((name, f"{t:.2f}", f"{f1:.3f}", f"{err:.3f}"))
    _table(
        f"Sparse Bayesian learning: {n} random rows of the orthonormal DCT, "
        f"{p} coefficients, {n_nonzero} non-zero, noise 0.01 (first small fit "
        f"incl. numba compile/cache load: {t_compile:.1f} s)",
        ("method", "time [s]", "support F1 (|z|>0.05)", "rel. error"),
        out,
    )


def _threshold_pca_kmeans(x, n_neurons, length, random_state):
    """The classic spike sorter: threshold crossings of |x| at 4.5 noise
    deviations, aligned windows, PCA to 3 dimensions and k-means."""
    sigma = np.median(np.abs(x)) / 0.6745
    mag = np.abs(x)
    above = mag > 4.5 * sigma
    left = length // 3
    peaks = []
    i = 0
    while i < len(x):  # one peak per excursion above the threshold
        if above[i]:
            j = i
            while j < len(x) and above[j]:
                j += 1
            peaks.append(i + int(np.argmax(mag[i:j])))
            i = j
        else:
            i += 1
    peaks = np.array([p for p in peaks if left <= p <= len(x) - length + left])
    windows = np.stack([x[p - left : p - left + length] for p in peaks])
    features = PCA(3, random_state=random_state).fit_transform(windows)
    labels = KMeans(n_neurons, n_init=10, random_state=random_state).fit_predict(
        features
    )
    templates = np.stack([windows[labels == k].mean(axis=0) for k in range(n_neurons)])
    events = np.zeros(len(peaks), dtype=event_dtype(1))
    events["kernel"], events["position"] = labels, peaks - left
    return templates[:, None, :], events


def spike_sorting_section(n_jobs=2, random_state=0):
    """Spike sorting: learned kernels + detect_events vs threshold/PCA/k-means."""
    X, kernels, _ = make_spike_recording(10, 10_000, random_state=random_state)
    long, _, true_events = make_spike_recording(1, 600_000, random_state=random_state)
    t_compile, _ = _warm_up(
        lambda: ConvolutionalDictionaryLearning(3, 45, max_iter=1, tol=0).fit(
            X[:2, :1000]
        )
    )
    cdl = ConvolutionalDictionaryLearning(
        3, 45, alpha=0.6, positive_code=True, n_jobs=n_jobs, random_state=random_state
    )
    t_fit, _ = _timed(lambda: cdl.fit(X))
    t_sort, detected = _timed(lambda: cdl.detect_events(long, threshold=0.2))
    t_classic, (templates, classic) = _timed(
        lambda: _threshold_pca_kmeans(long[0], 3, 45, random_state)
    )
    rows = []
    for name, t, H, ev in [
        ("skunroll ConvolutionalDictionaryLearning + detect_events",
         t_fit + t_sort, cdl.kernels_,
         detected),
        ("threshold + sklearn PCA + KMeans", t_classic, templates, classic),
    ]:  # fmt: skip
        err = atom_recovery_errors(kernels[:, 0], H[:, 0], shift_invariant=True)
        f1 = event_detection_f1(true_events, ev, kernels, H)
        rows.append((name, f"{t:.2f}", f"{err.max():.3f}", f"{f1:.3f}"))
    _table(
        f"Spike sorting: 3 neurons, 1 s of training data, a 60-s recording sorted "
        f"(10 kHz, noise 0.1; {len(true_events)} spikes; {n_jobs} threads; first "
        f"small fit incl. numba compile/cache load: {t_compile:.1f} s)",
        ("method", "time [s]", "worst waveform error", "spike-time F1 (0.5 ms)"),
        rows,
    )


SECTIONS = [
    sparse_coding_section,
    dictionary_recovery_section,
    clustering_section,
    sbl_section,
    spike_sorting_section,
]


def run_demo(n_jobs=2):
    """Run every section of the showcase and print its table."""
    print("skunroll demo: planted problems with known answers, "
          "skunroll vs scikit-learn in one process")  # fmt: skip
    for section in SECTIONS:
        section(n_jobs=n_jobs)
