"""skunroll.distributed on a LocalCluster of processes: training and encoding
throughput with 1 and 2 workers against the local fit, the bytes sent per
step, and what periodic averaging costs in accuracy.

    python benchmarks/bench_distributed.py [--quick] [--repeats 3]

Every configuration runs in this process on the same data; medians over
``--repeats`` runs. The data are loaded on the workers once (persisted), as
from storage. Workers have one thread each (skunroll runs one thread
per task inside a worker); the local reference runs with ``n_jobs=1`` and
``n_jobs=2``. The machine's load is printed: on a shared 2-core machine
the 2-worker figures compete with whatever else runs.
"""

import argparse
import os
import time
import warnings

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

import skunroll.distributed as sd
from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.metrics import recovery_rate

warnings.simplefilter("ignore", ConvergenceWarning)


def make_data(n_samples, n_features, n_components, seed=0):
    D = make_dictionary(n_components, n_features, kind="gaussian", random_state=seed)
    X, D, _ = make_sparse_coded_data(
        n_samples, D, n_nonzero_coefs=3, noise=0.01, random_state=seed
    )
    return X.astype(np.float32), D


def estimator(n_components, n_jobs=1, max_iter=2, batch_size=1024):
    return UnrolledDictionaryLearning(
        n_components,
        alpha=0.1,
        n_unroll=30,
        max_iter=max_iter,
        tol=0,
        batch_size=batch_size,
        random_state=0,
        n_jobs=n_jobs,
    )


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, p, k = (8000, 128, 256) if args.quick else (20000, 256, 512)
    X, D = make_data(n, p, k)
    print(f"data {n} x {p} float32, {k} atoms, FISTA depth 30, batch 1024, 2 epochs")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []

    # -------------------------------------------------------- local reference
    for n_jobs in (1, 2):
        t, est = median_time(lambda j=n_jobs: estimator(k, j).fit(X), args.repeats)
        te, _ = median_time(lambda e=est: e.transform(X), args.repeats)
        rows.append(("local", f"n_jobs={n_jobs}", t, te, None, None))
    ref = est

    for n_workers in (1, 2):
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=50,
            ) as cluster,
            Client(cluster) as client,
        ):
            # the data loaded on the workers once, as from storage: the fits
            # and transforms below time training and encoding, not its transfer
            Xd = client.persist(da.from_array(X, chunks=n // 4))
            sd.fit(estimator(k, max_iter=1), Xd, client=client)  # warm the workers

            def train(client=client, Xd=Xd):
                return sd.fit(estimator(k), Xd, client=client, return_stats=True)

            t, (est, stats) = median_time(train, args.repeats)
            err = float(np.abs(est.components_ - ref.components_).max())
            te, _ = median_time(
                lambda e=est, Xd=Xd: sd.transform(e, Xd).compute(), args.repeats
            )
            step = float(np.median(stats.step_seconds))
            rows.append(
                ("dask sync", f"{n_workers} worker(s)", t, te, stats.bytes_per_step,
                 f"max |D - D_local| {err:.1e}; step {step * 1e3:.0f} ms")
            )  # fmt: skip
            t, (est, stats) = median_time(
                lambda client=client, Xd=Xd: sd.fit(
                    estimator(k), Xd, client=client, sync="average", local_steps=8,
                    return_stats=True,
                ),
                args.repeats,
            )  # fmt: skip
            rows.append(
                ("dask average(8)", f"{n_workers} worker(s)", t, None,
                 stats.bytes_per_step / 8, "bytes per local step")
            )  # fmt: skip

    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    local_train = rows[0][2]
    local_enc = rows[0][3]
    print(
        f"{'mode':<16} {'workers':<12} {'train s':>8} {'rows/s':>9} {'vs local':>8} "
        f"{'encode s':>9} {'vs local':>8} {'kB/step':>8}  note"
    )
    for mode, who, t, te, b, note in rows:
        enc = f"{te:9.2f} {local_enc / te:8.2f}" if te else f"{'':>9} {'':>8}"
        kb = f"{b / 1e3:8.1f}" if b else f"{'':>8}"
        print(
            f"{mode:<16} {who:<12} {t:8.2f} {2 * n / t:9.0f} {local_train / t:8.2f} "
            f"{enc} {kb}  {note or ''}"
        )

    # ------------------------------------- what periodic averaging costs
    print("\naccuracy: planted 64 x 32 dictionary, 6000 samples, 20 epochs")
    X2, D2, _ = make_sparse_coded_data(
        6000,
        make_dictionary(64, 32, kind="incoherent", coherence=0.3, random_state=1),
        n_nonzero_coefs=3,
        code_distribution="uniform",
        random_state=1,
    )

    def planted():
        return UnrolledDictionaryLearning(
            64, alpha=0.1, max_iter=20, batch_size=256, random_state=0
        )

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        X2d = client.persist(da.from_array(X2, chunks=1500))
        print(f"{'mode':<22} {'recovery':>8} {'score':>10} {'round trips':>11}")
        est = sd.fit(planted(), X2d, client=client)
        print(
            f"{'sync (= local)':<22} {recovery_rate(D2, est.components_):8.3f} "
            f"{est.score(X2):10.5f} {est.n_steps_:11d}"
        )
        for local_steps in (2, 4, 8, 16):
            est, stats = sd.fit(
                planted(), X2d, client=client, sync="average",
                local_steps=local_steps, return_stats=True,
            )  # fmt: skip
            print(
                f"{f'average({local_steps})':<22} "
                f"{recovery_rate(D2, est.components_):8.3f} "
                f"{est.score(X2):10.5f} {stats.n_steps:11d}"
            )


if __name__ == "__main__":
    main()
