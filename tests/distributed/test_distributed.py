"""skunroll.distributed on a real LocalCluster of worker processes."""

import os
import signal
import subprocess
import sys
import warnings

import dask.array as da
import joblib
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skunroll.distributed as sd
from skunroll import (
    ConvolutionalDictionaryLearning,
    MixMateClustering,
    UnrolledDictionaryLearning,
)
from skunroll._parallel import effective_threads, in_dask_worker
from skunroll.datasets import (
    make_dictionary,
    make_sparse_coded_data,
    make_spike_recording,
)
from skunroll.metrics import recovery_rate

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _cluster(n_workers=2):
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=50,
    )


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    D = make_dictionary(16, 12, kind="incoherent", coherence=0.4, random_state=0)
    X, _, _ = make_sparse_coded_data(400, D, n_nonzero_coefs=2, random_state=0)
    return X


def _dl(**params):
    base = dict(alpha=0.1, max_iter=3, batch_size=64, random_state=0)
    return UnrolledDictionaryLearning(16, **{**base, **params})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_fit_equals_local(client, data, dtype):
    X = data.astype(dtype)
    local = _dl().fit(X)
    est, stats = sd.fit(
        _dl(), da.from_array(X, chunks=90), client=client, return_stats=True
    )
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert est.components_.dtype == dtype
    np.testing.assert_allclose(est.components_, local.components_, atol=tol)
    np.testing.assert_allclose(
        est.objective_history_, local.objective_history_, rtol=tol
    )
    assert est.n_steps_ == local.n_steps_ == stats.n_steps
    assert stats.n_shards == 5
    assert stats.bytes_sent > 0 and stats.bytes_received > 0
    np.testing.assert_allclose(est.transform(X), local.transform(X), atol=10 * tol)


def test_dense_redrawn_atoms_equal_local(client, data):
    # more atoms than the data need: some die and are re-drawn from the
    # worst residuals, which the shards return and the client merges
    params = dict(max_iter=4, batch_size=50, alpha=0.5)
    X = data[:200]
    local = UnrolledDictionaryLearning(40, random_state=1, **params).fit(X)
    est = sd.fit(
        UnrolledDictionaryLearning(40, random_state=1, **params),
        da.from_array(X, chunks=70),
        client=client,
    )
    assert local.n_redrawn_ > 0
    assert est.n_redrawn_ == local.n_redrawn_
    np.testing.assert_allclose(est.components_, local.components_, atol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        {"encoder": "mp", "n_nonzero_coefs": 3, "fit_intercept": True},
        {"encoder": "topk", "n_nonzero_coefs": 3},
        {"encoder": "relu", "fit_intercept": True},
        {"dictionary": "archetypal", "n_candidates": 40},
        {"encoder": "mp", "n_nonzero_coefs": 2, "dictionary": "archetypal"},
    ],
)
def test_every_encoder_and_dictionary_equals_local(client, data, params):
    local = _dl(**params).fit(data)
    est = sd.fit(_dl(**params), da.from_array(data, chunks=90), client=client)
    np.testing.assert_allclose(est.components_, local.components_, atol=1e-10)
    for name in ("intercept_", "encoder_bias_", "archetype_weights_"):
        if getattr(local, name, None) is not None:
            np.testing.assert_allclose(getattr(est, name), getattr(local, name),
                                       atol=1e-10)  # fmt: skip
    assert est.n_redrawn_ == local.n_redrawn_


def test_sparse_codes_stay_sparse(client, data):
    import scipy.sparse as sp

    est = _dl(encoder="mp", n_nonzero_coefs=3, transform_output="sparse").fit(data)
    codes = sd.transform(est, da.from_array(data, chunks=100))
    assert isinstance(codes._meta, sp.csr_matrix)
    blocks = codes.to_delayed().ravel()
    assert all(sp.issparse(b.compute()) for b in blocks)
    np.testing.assert_allclose(
        sp.vstack([b.compute() for b in blocks]).toarray(),
        est.transform(data).toarray(),
    )


def test_mixmate_fit_equals_local(client, data):
    rng = np.random.default_rng(0)
    init = rng.standard_normal((2, 8, data.shape[1]))
    params = dict(n_components=8, init=init, max_iter=2, batch_size=64, random_state=0)
    local = MixMateClustering(2, **params).fit(data)
    est = sd.fit(MixMateClustering(2, **params), da.from_array(data, chunks=100))
    np.testing.assert_allclose(est.components_, local.components_, atol=1e-10)
    np.testing.assert_allclose(est.weights_, local.weights_, atol=1e-12)
    np.testing.assert_array_equal(est.labels_, local.labels_)


@pytest.fixture(scope="module")
def signals():
    X, _, _ = make_spike_recording(4, 3000, random_state=0)
    return X


def test_convolutional_fit_equals_local(client, signals):
    params = dict(
        n_components=2,
        kernel_size=20,
        max_iter=2,
        code_warm_start=False,
        random_state=0,
    )
    local = ConvolutionalDictionaryLearning(**params).fit(signals)
    est = sd.fit(
        ConvolutionalDictionaryLearning(**params),
        da.from_array(signals, chunks=(2, -1)),
        client=client,
    )
    np.testing.assert_allclose(est.kernels_, local.kernels_, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, local.intercept_, atol=1e-10)


def test_transform_is_lazy_and_equals_local(client, data):
    est = _dl().fit(data)
    Xd = da.from_array(data, chunks=77)
    codes = sd.transform(est, Xd)
    assert isinstance(codes, da.Array)
    assert codes.shape == (data.shape[0], 16)
    np.testing.assert_allclose(codes.compute(), est.transform(data), atol=1e-12)


def test_code_maps_and_events_equal_whole_signal(client):
    X, _, _ = make_spike_recording(n_times=12000, random_state=0)
    est = ConvolutionalDictionaryLearning(
        n_components=2, kernel_size=30, max_iter=2, random_state=0
    ).fit(X[:, :3000])
    Xd = da.from_array(X, chunks=(1, 2500))
    maps = sd.code_maps(est, Xd, chunk_positions=1000)
    assert isinstance(maps, da.Array)
    np.testing.assert_allclose(maps.compute(), est.code_maps(X), atol=1e-12)
    events = sd.detect_events(est, Xd, threshold=0.1, chunk_positions=1000).compute()
    ref = est.detect_events(X, threshold=0.1)
    assert len(ref) > 10
    got = events.sort_values(["sample", "kernel", "position"])
    np.testing.assert_array_equal(got["position"].to_numpy(), ref["position"])
    np.testing.assert_array_equal(got["kernel"].to_numpy(), ref["kernel"])
    np.testing.assert_allclose(got["amplitude"].to_numpy(), ref["amplitude"])


def test_threads_capped_in_workers(client):
    assert not in_dask_worker()
    assert client.submit(in_dask_worker, pure=False).result()
    assert client.submit(effective_threads, -1, pure=False).result() == 1


def test_grid_search_under_dask_backend(client, data):
    def pool_sizes():
        from skunroll._parallel import _thread_pool

        return _thread_pool.cache_info().currsize

    grid = {"alpha": [0.05, 0.2]}
    est = _dl(n_jobs=-1, max_iter=2)
    with joblib.parallel_config(backend="dask"):
        search = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(data)
    local = GridSearchCV(_dl(max_iter=2), grid, cv=2).fit(data)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    # the fits ran in the workers on one thread each: no pool of several
    # threads was ever started there
    assert set(client.run(pool_sizes).values()) == {0}


def test_incremental_partial_fit(client, data):
    from dask_ml.wrappers import Incremental

    Xd = da.from_array(data, chunks=100)
    inc = Incremental(_dl(), shuffle_blocks=False).fit(Xd)
    local = _dl()
    for lo in range(0, data.shape[0], 100):
        local.partial_fit(data[lo : lo + 100])
    np.testing.assert_allclose(
        inc.estimator_.components_, local.components_, atol=1e-10
    )


def test_bad_input(client, data):
    X = data.copy()
    X[3, 2] = np.nan
    est = _dl()
    with pytest.raises(ValueError, match="NaN"):
        sd.fit(est, da.from_array(X, chunks=100), client=client)
    assert not hasattr(est, "components_")
    assert not hasattr(est, "n_features_in_")
    with pytest.raises(ValueError, match="2-D"):
        sd.fit(_dl(), da.from_array(data[:, :, None], chunks=100), client=client)
    with pytest.raises(TypeError, match="trains"):
        sd.fit(object(), da.from_array(data, chunks=100), client=client)
    unknown = da.from_array(data, chunks=100)
    unknown = unknown[unknown[:, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        sd.fit(_dl(), unknown, client=client)


def test_no_client_is_a_clear_error():
    code = (
        "import numpy as np, skunroll.distributed as sd\n"
        "from skunroll import UnrolledDictionaryLearning as U\n"
        "try:\n"
        "    sd.fit(U(2), np.ones((10, 4)))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "needs a distributed.Client" in out.stdout


def test_worker_killed_mid_fit(data):
    """A worker process killed during training: the fit recovers (the lost
    shards recomputed on a live worker) and equals the local fit, or it raises
    a clear error and leaves the estimator unfitted; never half-updated."""
    local = _dl(max_iter=6).fit(data)
    with _cluster() as cluster, Client(cluster) as c:
        pids = c.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_once(est, info):
            if info["n_steps"] == 5 and not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(True)

        est = _dl(max_iter=6, callback=kill_once)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                sd.fit(est, da.from_array(data, chunks=50), client=c, timeout=60)
        except RuntimeError as exc:
            print("the fit raised:", exc)
            assert "nothing was fitted" in str(exc)
            assert not hasattr(est, "components_")
        else:
            print("the fit recovered")
            np.testing.assert_allclose(est.components_, local.components_, atol=1e-10)
        assert killed


def test_periodic_averaging_close_to_synchronous(client):
    D = make_dictionary(32, 16, kind="incoherent", coherence=0.4, random_state=0)
    X, D, _ = make_sparse_coded_data(
        3000, D, n_nonzero_coefs=2, code_distribution="uniform", random_state=0
    )

    def make():
        return UnrolledDictionaryLearning(32, alpha=0.1, max_iter=15, random_state=0)

    Xd = da.from_array(X, chunks=750)
    sync = sd.fit(make(), Xd, client=client)
    avg, stats = sd.fit(
        make(), Xd, client=client, sync="average", local_steps=2, return_stats=True
    )
    assert stats.n_steps * 2 == sync.n_steps_  # one round trip per two steps
    assert recovery_rate(D, sync.components_) == 1.0
    assert recovery_rate(D, avg.components_) >= 0.9
    assert avg.score(X) >= sync.score(X) * 1.02  # scores are negative
    with pytest.raises(ValueError, match="sync"):
        sd.fit(make(), Xd, client=client, sync="async")
    with pytest.raises(ValueError, match="local_steps"):
        sd.fit(make(), Xd, client=client, sync="average", local_steps=0)
    with pytest.raises(ValueError, match="sync='average'"):
        sd.fit(MixMateClustering(2), Xd, client=client, sync="average")


@pytest.mark.parametrize("store", ["memmap", "zarr"])
def test_partial_fit_chunks_from_disk(tmp_path, data, store):
    import zarr

    X = data.astype(np.float32)
    if store == "memmap":
        src = np.lib.format.open_memmap(
            tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape
        )
    else:
        src = zarr.open(
            str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(100, 12),
            dtype="f4",
        )  # fmt: skip
    src[:] = X
    est = sd.partial_fit_chunks(_dl(), src, chunk_rows=100, n_epochs=2, random_state=0)
    order = np.random.RandomState(0)
    ref = _dl()
    for _ in range(2):
        for a in order.permutation(np.arange(0, 400, 100)):
            ref.partial_fit(X[a : a + 100])
    assert est.components_.dtype == np.float32
    np.testing.assert_allclose(est.components_, ref.components_, atol=1e-6)
    assert X.dtype == np.float32 and np.array_equal(np.asarray(src[:]), X)
    with pytest.raises(ValueError, match="chunk_rows"):
        sd.partial_fit_chunks(_dl(), src, chunk_rows=0)
    with pytest.raises(ValueError, match="2-D"):
        sd.partial_fit_chunks(_dl(), [1, 2, 3])
