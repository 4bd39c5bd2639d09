"""Sparse autoencoders: matching pursuit, TopK and ReLU encoders vs scikit-learn.

Parts (select with ``--part``):

``a``  The MP-SAE paper's toy hierarchy (``skunroll.datasets.make_sae_hierarchy``
       with its defaults: 20 concepts in 20 dimensions, 3 parents of 3
       mutually exclusive children and 8 singletons, noiseless) across its
       coherence knob: Hungarian-matched cosine of the learned atoms to the
       true features (``skunroll.metrics.matched_cosine``: each true feature
       matched to a distinct atom; its mean, and its worst feature) and
       explained variance R^2 (``skunroll.metrics.explained_variance``) of
       ``UnrolledDictionaryLearning`` with ``encoder`` in mp, topk, relu,
       fista and of scikit-learn's ``MiniBatchDictionaryLearning`` (OMP
       transform), medians over ``--seeds`` seeds. Every method gets
       ``--expansion`` (default 4) atoms per true feature, as SAEs are
       over-complete (``--expansion 1`` is the paper's 20 atoms), and ``k``
       = the largest number of active features of a sample, 2 (MP's steps,
       TopK's k, OMP's ``n_nonzero_coefs``). The skunroll encoders: Adam
       (``--optimizer``, ``--learning-rate`` 0.01), 20 epochs of batches of
       256, non-negative codes (``--signed`` turns that off; scikit-learn's
       OMP has no such constraint), and a pre-bias for the shallow
       encoders only (``--intercept auto``: the paper's MP-SAE has none, its
       shallow SAEs have one; ``on``/``off`` for all SAE encoders).
       ``--init truth --expansion 1`` starts every method at the true
       features (is the truth a stable point of its training?) instead
       of distinct samples of X (the default initialisation).

``c``  Throughput on 100,000 x 768 float32 activations, 4,096 atoms, k = 32:
       seconds per training epoch and per transform pass (sparse CSR output)
       for ``encoder="mp"`` and ``"topk"``, against scikit-learn's
       ``MiniBatchDictionaryLearning`` (fit_algorithm="lars", the default;
       scikit-learn has no OMP training, its OMP is the transform,
       ``transform_algorithm="omp"``, ``transform_n_nonzero_coefs=32``), and
       the peak resident memory of each (every method runs in a fresh
       subprocess that loads the same data, so ``ru_maxrss`` is its own).
       scikit-learn's epoch is extrapolated from ``--sklearn-batches`` timed
       minibatches of 256 (after one untimed, which initialises), and its
       transform from ``--sklearn-transform`` samples: the output says so.
       The data: 4,096 unit-norm Gaussian atoms, 32-sparse codes with
       |coefficients| in [0.5, 1.5], Gaussian noise 0.05, float32.

``d``  Dead atoms: a planted 128-atom dictionary in 64 dimensions, 4-sparse
       codes, 20,000 samples; ``encoder="mp"`` and ``"topk"`` started from
       Gaussian atoms of which a quarter lie outside the span of the data
       (orthogonal to the first 48 features, where the data live), so no
       code uses them. Per epoch: the fraction of atoms no code uses, R^2
       and the recovery rate of the planted atoms, with the re-draw as
       shipped and with it switched off (``_redraw`` replaced by a
       no-op in this process), medians over 3 seeds.

``s``  Streaming: a ``numpy.memmap`` of 1,000,000 x 768 float32 (3 GB, written
       to a temporary file chunk by chunk with the data of part (c)),
       ``partial_fit`` of ``encoder="mp"`` with 16,384 atoms, k = 32, over
       float32 chunks of 4,096 rows read from it (``--stream-chunks`` of
       them, spread over the file; 0 means all), then a sparse transform of
       100,000 rows read from it: seconds per chunk, the epoch they
       extrapolate to, and the peak resident memory against the size of the
       file and of dense codes.

Run: ``python benchmarks/bench_sae.py --part c`` (``--n-samples`` to shrink),
``python benchmarks/bench_sae.py --part a``. Numba compilation is excluded
(a small warm-up fit first). Record the load (``uptime``) with the figures:
the machine has 2 cores and timings move with other jobs.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

N_JOBS = 2
EPOCHS_D = (1, 2, 4, 8)


# ----------------------------------------------------------------- part (c)


def throughput_data(n_samples, n_features, n_atoms, k, seed=0):
    """Planted activations: k-sparse combinations of unit Gaussian atoms."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_atoms, n_features)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    for start in range(0, n_samples, 10_000):
        n = min(10_000, n_samples - start)
        cols = np.argsort(rng.random((n, n_atoms)), axis=1)[:, :k].ravel()
        vals = rng.uniform(0.5, 1.5, n * k) * rng.choice([-1.0, 1.0], n * k)
        Z = sp.csr_matrix(
            (vals.astype(np.float32), cols, np.arange(0, n * k + 1, k)),
            shape=(n, n_atoms),
        )
        X[start : start + n] = Z @ D
    X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    return X


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def traced_peak_mb(fn):
    """Peak of the memory numpy and Python allocate while ``fn`` runs (MB)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def write_memmap(path, n=1_000_000, m=768, k=32):
    """The file of part (s), written 100,000 rows at a time."""
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, m))
    for start in range(0, n, 100_000):
        mm[start : start + 100_000] = throughput_data(100_000, m, 4096, k, start)
    mm.flush()


def worker(method, path, n_atoms, k, batch_size, sk_batches, sk_transform):
    """One method on the saved data, in its own process; prints JSON."""
    from skunroll import UnrolledDictionaryLearning

    X = np.array(np.load(path, mmap_mode="r"))
    n = X.shape[0]
    base_mb = peak_mb()
    rng = np.random.default_rng(1)
    init = rng.standard_normal((n_atoms, X.shape[1])).astype(np.float32)
    init /= np.linalg.norm(init, axis=1, keepdims=True)
    out = {"method": method, "n_samples": n, "data_mb": base_mb}
    if method in ("mp", "topk"):
        params = dict(
            encoder=method, n_nonzero_coefs=k, fit_intercept=True, dict_init=init,
            batch_size=batch_size, max_iter=1, tol=0, learning_rate=1e-3,
            n_jobs=N_JOBS, random_state=0, transform_output="sparse",
        )  # fmt: skip
        # compile (numba cache) on a small fit, then time a fresh estimator
        UnrolledDictionaryLearning(n_atoms, **params).fit(X[:600]).transform(X[:600])
        dl = UnrolledDictionaryLearning(n_atoms, **params)
        t0 = time.perf_counter()
        dl.fit(X)
        out["epoch_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        codes = dl.transform(X)
        out["transform_s"] = time.perf_counter() - t0
        out["nnz_per_row"] = codes.nnz / n
        out["r2"] = 1 - float(
            np.sum((X - dl.inverse_transform(codes)) ** 2)
            / np.sum((X - X.mean(axis=0)) ** 2)
        )
        out["extrapolated"] = False
        out["step_traced_mb"] = traced_peak_mb(lambda: dl.partial_fit(X[:batch_size]))
        out["transform_traced_mb"] = traced_peak_mb(lambda: dl.transform(X))
    else:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        mb = MiniBatchDictionaryLearning(
            n_atoms, batch_size=256, dict_init=init, transform_algorithm="omp",
            transform_n_nonzero_coefs=k, random_state=0,
        )  # fmt: skip
        mb.partial_fit(X[:256])  # initialises (not timed)
        times = []
        for b in range(1, sk_batches + 1):
            t0 = time.perf_counter()
            mb.partial_fit(X[b * 256 : (b + 1) * 256])
            times.append(time.perf_counter() - t0)
        out["batch_s"] = float(np.median(times))
        out["epoch_s"] = out["batch_s"] * -(-n // 256)
        m = min(sk_transform, n)
        t0 = time.perf_counter()
        mb.transform(X[:m])
        out["transform_s"] = (time.perf_counter() - t0) * n / m
        out["step_traced_mb"] = traced_peak_mb(lambda: mb.partial_fit(X[-256:]))
        out["transform_traced_mb"] = traced_peak_mb(lambda: mb.transform(X[:m]))
        out["extrapolated"] = (
            f"epoch from the median of {sk_batches} minibatches x "
            f"{-(-n // 256)}; transform from {m} samples"
        )
    out["peak_mb"] = peak_mb()
    print(json.dumps(out))


def part_c(args):
    n, m, atoms, k = args.n_samples, 768, 4096, 32
    print(f"part (c): {n} x {m} float32, {atoms} atoms, k = {k}, n_jobs = {N_JOBS}")
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        t0 = time.perf_counter()
        np.save(path, throughput_data(n, m, atoms, k))
        print(f"data generated in {time.perf_counter() - t0:.1f} s")
        results = []
        for method in args.methods:
            cmd = [
                sys.executable, __file__, "--worker", method, "--data", path,
                "--batch-size", str(args.batch_size),
                "--sklearn-batches", str(args.sklearn_batches),
                "--sklearn-transform", str(args.sklearn_transform),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr)
                raise SystemExit(f"{method} failed")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {method}: done, load {os.getloadavg()[0]:.2f}", flush=True)
    sk = next((r for r in results if r["method"] == "sklearn"), None)
    print()
    print(
        "| method | s / epoch | s / transform | epoch speed-up vs sklearn | "
        "transform speed-up | peak RSS MB | traced MB: step / transform |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        up = up_t = ""
        if sk is not None and r is not sk:
            up = f"{sk['epoch_s'] / r['epoch_s']:.0f}x"
            up_t = f"{sk['transform_s'] / r['transform_s']:.1f}x"
        name = {"mp": "skunroll mp", "topk": "skunroll topk"}.get(
            r["method"], "sklearn MiniBatchDL (lars fit, omp transform)"
        )
        print(
            f"| {name} | {r['epoch_s']:.1f} | {r['transform_s']:.1f} | {up} | "
            f"{up_t} | {r['peak_mb']:.0f} | {r['step_traced_mb']:.0f} / "
            f"{r['transform_traced_mb']:.0f} |"
        )
    for r in results:
        if r.get("extrapolated"):
            print(f"sklearn extrapolated: {r['extrapolated']}")
        if "r2" in r:
            print(
                f"{r['method']}: R2 after one epoch {r['r2']:.3f}, "
                f"nnz per code {r['nnz_per_row']:.1f}"
            )
    print(
        f"RSS after loading the data (imports, numba, X): "
        f"{results[0]['data_mb']:.0f} MB; traced MB: peak numpy/Python "
        "allocations of one training step (partial_fit of a minibatch: "
        f"{args.batch_size} rows for skunroll, 256 for sklearn) and of the "
        "transform (skunroll: all samples, CSR output; sklearn: the timed "
        "samples, dense output)"
    )
    print(f"load after: {os.getloadavg()}")


# ----------------------------------------------------------------- part (a)


def part_a(args):
    from sklearn.decomposition import MiniBatchDictionaryLearning

    from skunroll import UnrolledDictionaryLearning
    from skunroll.datasets import make_sae_hierarchy
    from skunroll.metrics import explained_variance, matched_cosine

    methods = ["mp", "topk", "relu", "fista", "sklearn"]
    print(f"part (a): load before {os.getloadavg()}")
    rows = []
    for coherence in args.coherences:
        scores = {name: [] for name in methods}
        for seed in range(args.seeds):
            X, features, codes = make_sae_hierarchy(
                args.n_samples_a, coherence=coherence, noise=args.noise,
                random_state=seed,
            )  # fmt: skip
            n_atoms = args.expansion * features.shape[0]
            k = int(np.max(np.count_nonzero(codes, axis=1)))
            for name in methods:
                if name == "sklearn":
                    # its OMP transform takes no positivity constraint
                    est = MiniBatchDictionaryLearning(
                        n_atoms, transform_algorithm="omp",
                        transform_n_nonzero_coefs=k, random_state=seed,
                        max_iter=args.epochs,
                        dict_init=features if args.init == "truth" else None,
                    )  # fmt: skip
                else:
                    if args.intercept == "auto":  # the paper's SAEs: b_dec for
                        intercept = name in ("topk", "relu")  # the shallow ones
                    else:
                        intercept = args.intercept == "on" and name != "fista"
                    est = UnrolledDictionaryLearning(
                        n_atoms, encoder=name, n_nonzero_coefs=k,
                        positive_code=not args.signed, fit_intercept=intercept,
                        max_iter=args.epochs, learning_rate=args.learning_rate,
                        optimizer=args.optimizer, batch_size=256, tol=0,
                        random_state=seed, alpha=0.05,
                        dict_init=features if args.init == "truth" else None,
                    )  # fmt: skip
                    if args.init == "truth" and args.expansion != 1:
                        raise SystemExit("--init truth needs --expansion 1")
                est.fit(X)
                X_hat = est.inverse_transform(est.transform(X))
                cos = matched_cosine(features, est.components_, per_atom=True)
                scores[name].append(
                    (
                        float(np.mean(cos)),
                        float(np.min(cos)),
                        float(explained_variance(X, X_hat)),
                        # the defaults' layout: parents, children, singletons
                        float(np.mean(cos[:3])),
                        float(np.mean(cos[3:12])),
                        float(np.mean(cos[12:])),
                    )
                )
        for name in methods:
            values = np.array(scores[name])
            med = np.median(values, axis=0)
            rows.append((coherence, name, med, values[:, 0]))
            print(
                f"coherence {coherence:.1f}  {name:8s} matched cosine "
                f"{med[0]:.3f} (seeds: {np.round(values[:, 0], 3).tolist()}, "
                f"worst feature {med[1]:.3f})  R2 {med[2]:.3f}  by group: "
                f"parents {med[3]:.3f}, children {med[4]:.3f}, singletons "
                f"{med[5]:.3f}",
                flush=True,
            )
    print(f"load after {os.getloadavg()}")
    print()
    print(
        "| coherence | method | matched cosine (median) | per seed | "
        "worst feature (median) | R^2 |"
    )
    print("|---|---|---|---|---|---|")
    for coherence, name, med, per_seed in rows:
        seeds = ", ".join(f"{v:.3f}" for v in per_seed)
        print(
            f"| {coherence:.1f} | {name} | {med[0]:.3f} | {seeds} | {med[1]:.3f} "
            f"| {med[2]:.3f} |"
        )


# ----------------------------------------------------------------- part (s)


def part_s(args):
    from skunroll import UnrolledDictionaryLearning

    n, m, atoms, k, chunk = 1_000_000, 768, 16_384, 32, 4096
    print(f"part (s): memmap {n} x {m} float32, {atoms} atoms, k = {k}")
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "activations.f32")
        # written by another process, so that this one's peak RSS is training's
        cmd = [sys.executable, __file__, "--worker", "write", "--data", path]
        subprocess.run(cmd, check=True)
        mm = np.memmap(path, dtype=np.float32, mode="r", shape=(n, m))
        rss0 = peak_mb()
        dl = UnrolledDictionaryLearning(
            atoms, encoder="mp", n_nonzero_coefs=k, fit_intercept=True, tol=0,
            learning_rate=1e-3, n_jobs=N_JOBS, random_state=0,
            transform_output="sparse",
        )  # fmt: skip
        starts = np.arange(0, n - chunk + 1, chunk)
        if args.stream_chunks:
            starts = starts[:: max(1, len(starts) // args.stream_chunks)]
            starts = starts[: args.stream_chunks]
        times = []
        for start in starts:
            t0 = time.perf_counter()
            dl.partial_fit(mm[start : start + chunk])
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        codes = dl.transform(mm[:100_000])
        t_transform = time.perf_counter() - t0
        per_chunk = float(np.median(times[1:] if len(times) > 1 else times))
        print(
            f"partial_fit: {len(times)} chunks of {chunk}, median "
            f"{per_chunk:.2f} s per chunk (first, with initialisation, "
            f"{times[0]:.2f} s) -> {per_chunk * n / chunk / 60:.1f} min per "
            f"epoch of {n} samples (extrapolated)"
        )
        print(
            f"transform of 100,000 rows, CSR output: {t_transform:.1f} s, "
            f"{codes.nnz / 100_000:.1f} nonzeros per code, "
            f"{(codes.data.nbytes + codes.indices.nbytes) / 2**20:.0f} MB"
        )
        print(
            f"peak RSS {peak_mb():.0f} MB (before training {rss0:.0f} MB; the "
            "pages of the memmap read count in it); "
            f"memmap file {n * m * 4 / 2**30:.1f} GB; dense float32 codes of "
            f"the file would be {n * atoms * 4 / 2**30:.0f} GB; the Gram "
            f"matrix of {atoms} atoms is {atoms**2 * 4 / 2**30:.1f} GB"
        )
    print(f"load after: {os.getloadavg()}")


# ----------------------------------------------------------------- part (d)


def part_d(args):
    from skunroll import UnrolledDictionaryLearning
    from skunroll._dense import dict_learning
    from skunroll.datasets import make_dictionary, make_sparse_coded_data
    from skunroll.metrics import recovery_rate

    shipped = dict_learning.UnrolledDictionaryLearning._redraw
    print("| encoder | re-draw | epoch | unused atoms | R^2 | recovery rate |")
    print("|---|---|---|---|---|---|")
    for encoder in ("mp", "topk"):
        for redraw in (True, False):
            table = np.zeros((3, len(EPOCHS_D), 3))
            for seed in range(3):
                rng = np.random.default_rng(seed)
                D = make_dictionary(128, 48, random_state=seed)
                D = np.hstack([D, np.zeros((128, 16))])
                X, _, _ = make_sparse_coded_data(
                    20_000, D, n_nonzero_coefs=4, noise=0.01, random_state=seed
                )
                init = rng.standard_normal((128, 64))
                init[:32, :48] = 0.0  # outside the data's span: never used
                init /= np.linalg.norm(init, axis=1, keepdims=True)
                dict_learning.UnrolledDictionaryLearning._redraw = (
                    shipped if redraw else lambda *a: None
                )
                for e, n_epochs in enumerate(EPOCHS_D):
                    # the same seed: fit(max_iter=e) is the first e epochs of
                    # the longest run
                    dl = UnrolledDictionaryLearning(
                        128, encoder=encoder, n_nonzero_coefs=4, dict_init=init,
                        max_iter=n_epochs, tol=0, learning_rate=0.01,
                        random_state=seed,
                    ).fit(X)  # fmt: skip
                    codes = dl.transform(X)
                    unused = float(np.mean(np.count_nonzero(codes, axis=0) == 0))
                    residual = X - dl.inverse_transform(codes)
                    r2 = 1 - np.sum(residual**2) / np.sum((X - X.mean(axis=0)) ** 2)
                    table[seed, e] = unused, r2, recovery_rate(D, dl.components_)
            dict_learning.UnrolledDictionaryLearning._redraw = shipped
            med = np.median(table, axis=0)
            for e, n_epochs in enumerate(EPOCHS_D):
                u, r2, rec = med[e]
                print(
                    f"| {encoder} | {'on' if redraw else 'off'} | {n_epochs} | "
                    f"{u:.3f} | {r2:.3f} | {rec:.3f} |",
                    flush=True,
                )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["a", "c", "d", "s"], default="c")
    parser.add_argument("--stream-chunks", type=int, default=12)
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--methods", nargs="+", default=["mp", "topk", "sklearn"])
    parser.add_argument("--sklearn-batches", type=int, default=3)
    parser.add_argument("--sklearn-transform", type=int, default=2000)
    parser.add_argument("--n-samples-a", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    # part (a): training of the skunroll encoders (see the module docstring)
    parser.add_argument("--expansion", type=int, default=4)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--intercept", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--signed", action="store_true")
    parser.add_argument("--init", default="samples", choices=["samples", "truth"])
    parser.add_argument(
        "--coherences", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.8]
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "write":
        write_memmap(args.data)
    elif args.worker:
        worker(
            args.worker, args.data, 4096, 32, args.batch_size,
            args.sklearn_batches, args.sklearn_transform,
        )  # fmt: skip
    elif args.part == "c":
        part_c(args)
    elif args.part == "d":
        part_d(args)
    elif args.part == "s":
        part_s(args)
    else:
        part_a(args)


if __name__ == "__main__":
    main()
