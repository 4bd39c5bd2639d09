"""make_multitask_measurements: shapes, clusters, the operator, bad input."""

import numpy as np
import pytest

from skunroll.datasets import make_multitask_measurements
from skunroll.utils import subsampled_dct


def test_shapes_clusters_and_operator():
    op, Y, mask, coef, labels, rows = make_multitask_measurements(
        200, 60, 9, 4, n_clusters=3, observed=0.5, noise=0.0, random_state=1
    )
    assert op.shape == (60, 200) and Y.shape == (60, 9) and mask.shape == (60, 9)
    assert coef.shape == (9, 200) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # one support of 4 per cluster, shared by its tasks
    for c in range(3):
        supports = {tuple(np.flatnonzero(coef[t])) for t in np.flatnonzero(labels == c)}
        assert len(supports) == 1 and len(next(iter(supports))) == 4
    # noise 0: the measurements are the DCT rows applied to the coefficients
    dense = subsampled_dct(rows, 200).matmat(np.eye(200))
    np.testing.assert_allclose(Y, dense @ coef.T, atol=1e-12)
    assert np.all(np.diff(rows) > 0)
    assert 0.4 < mask.mean() < 0.6


def test_seeded_and_signed_uniform():
    a = make_multitask_measurements(64, 32, 4, 3, random_state=0)
    b = make_multitask_measurements(64, 32, 4, 3, random_state=0)
    for x, y in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(x, y)
    coef = make_multitask_measurements(
        64, 32, 4, 3, coef_distribution="signed_uniform", random_state=0
    )[3]
    nz = np.abs(coef[coef != 0])
    assert nz.size == 12 and nz.min() >= 1 and nz.max() <= 2


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((10, 11, 4, 2), {}, "n_measurements=11 exceeds n_features=10"),
        ((10, 5, 4, 11), {}, "n_nonzero_coefs=11 exceeds n_features=10"),
        ((10, 5, 2, 2), {"n_clusters": 3}, "n_clusters=3 exceeds n_tasks=2"),
        ((10, 5, 4, 2), {"observed": 0.0}, "observed"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_multitask_measurements(*args, **kwargs)
