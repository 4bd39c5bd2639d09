"""scikit-learn's estimator checks over every public estimator.

``UnrolledSparseCoder`` and ``LearnedSparseCoder`` hold a fixed dictionary,
so the checks that feed it ``X`` with another number of features cannot pass
with one instance: they are declared expected failures below (each with its
reason) and then run again, each with a dictionary of the width that check
uses, as scikit-learn does for its own ``SparseCoder``. No check is left unexercised.

``UnrolledDictionaryLearning`` passes every check with no expected failure, in
several configurations (priors, likelihood-free options, optimisers, exact
transform). So do ``ConvolutionalDL``, which reads 2-D input as one-channel
signals, ``MixMateClustering`` and ``SparseBayesianLearning``, and
``ClusteredMultiTaskSBL`` with one shared design (a multi-output regressor, a
task per output), and ``UnrolledFactorAnalysis`` (NaN allowed: missing).
"""

import numpy as np
import pytest
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skunroll import (
    ClusteredMultiTaskSBL,
    ConvolutionalDL,
    LearnedSparseCoder,
    MixMateClustering,
    SparseBayesianLearning,
    UnrolledDictionaryLearning,
    UnrolledFactorAnalysis,
    UnrolledSparseCoder,
)

# check name -> number of features of the X that the check generates
FIXED_DICTIONARY_CHECKS = {
    "check_estimators_dtypes": 5,
    "check_dtype_object": 10,
    "check_transformers_unfitted_stateless": 5,
    "check_fit_idempotent": 2,
    "check_estimators_overwrite_params": 2,
    "check_estimators_fit_returns_self": 2,
    "check_readonly_memmap_input": 2,
    "check_n_features_in_after_fitting": 4,
    "check_fit_check_is_fitted": 2,
    "check_n_features_in": 2,
    "check_positive_only_tag_during_fit": 4,
    "check_fit2d_1sample": 10,
    "check_fit2d_1feature": 1,
}
REASON = "X has another number of features than the fixed dictionary"

CODER_PARAMS = [
    {},
    {"transform_algorithm": "lasso", "transform_alpha": 0.1},
    {"transform_algorithm": "fista", "transform_alpha": 0.1},
    {"transform_algorithm": "omp", "transform_n_nonzero_coefs": 2},
    {"split_sign": True, "positive_code": False},
]


# small, quick configurations; tol=0 so that no ConvergenceWarning is raised
DL_PARAMS = [
    {},
    {"gradient": "dec", "encoder": "ista", "optimizer": "sgd"},
    {"gradient": "ae-lasso", "positive_code": True, "positive_dict": True},
    {"prior": "group_l1", "groups": 1, "transform_alpha": 0.05},
    {"prior": "simplex", "n_components": 3},
    {"prior": "two_sided_gaussian", "batch_size": 4},
    {"transform_algorithm": "lasso"},
    {"dictionary": "archetypal"},
    {"dictionary": "archetypal", "delta": 0.2, "encoder": "ista", "gradient": "ae-ls"},
    {"encoder": "mp", "n_nonzero_coefs": 1, "fit_intercept": True},
    {"encoder": "mp", "positive_code": True, "transform_output": "sparse"},
    {"encoder": "topk", "n_nonzero_coefs": 1, "batch_size": 4},
    {"encoder": "relu", "fit_intercept": True, "gradient": "dec"},
    {"encoder": "mp", "dictionary": "archetypal", "n_nonzero_coefs": 1},
]


# kernels short enough for the checks' 1-feature data where they are of size 1
CDL_PARAMS = [
    {"kernel_size": 1},
    {"kernel_size": 2, "gradient": "ae-ls", "positive_code": True},
    {"kernel_size": 2, "rank1": True, "kernel_init": "random", "optimizer": "adam"},
    {"kernel_size": 2, "gradient": "ae-lasso", "code_sign": -1},
]


def _cdl(**params):
    base = {
        "n_components": 3,
        "max_iter": 2,
        "n_unroll": 5,
        "tol": 0,
        "random_state": 0,
    }
    return ConvolutionalDL(**{**base, **params})


MIXMATE_PARAMS = [
    {},
    {"assign": "hard", "init": "spectral", "n_components": 2},
    # learned mixing weights need more than the checks' 3 epochs on 50 blobs
    {"init": "ssc-omp", "temperature": 1.0, "mixing": "uniform"},
    {"missing": "mask", "batch_size": 8, "mixing": "uniform"},
]


def _mixmate(**params):
    base = {"n_components": 1, "max_iter": 3, "n_unroll": 5, "tol": 0}
    return MixMateClustering(**{**base, "random_state": 0, **params})


SBL = [
    SparseBayesianLearning(),
    SparseBayesianLearning(solver="cofem", max_iter=50),
    SparseBayesianLearning(solver="cofem", fit_intercept=False, n_jobs=2, max_iter=50),
    SparseBayesianLearning(positive=True),
    SparseBayesianLearning(multitask="independent", fit_noise=False),
    ClusteredMultiTaskSBL(),
    ClusteredMultiTaskSBL(solver="cofem", max_iter=30, random_state=0),
    ClusteredMultiTaskSBL(mode="joint", fit_noise=False),
    ClusteredMultiTaskSBL(mode="separate", solver="cofem", max_iter=30),
]


FA_PARAMS = [
    {},
    {"solver": "exact"},
    {"gradient": "output", "n_probes": 3, "optimizer": "sgd"},
    {"init": "random", "n_solver_steps": 1, "batch_size": 4},
    {"gradient": "output", "preconditioner": "full", "n_solver_steps": 2},
    {"gradient": "output", "preconditioner": None},
]


def _fa(**params):
    base = {"n_components": 1, "max_iter": 3, "tol": 0, "random_state": 0}
    return UnrolledFactorAnalysis(**{**base, **params})


def _dl(**params):
    base = {"max_iter": 2, "n_unroll": 5, "tol": 0, "random_state": 0}
    return UnrolledDictionaryLearning(**{**base, **params})


def _coder(n_features=3, **params):
    rng = np.random.default_rng(0)
    return UnrolledSparseCoder(rng.standard_normal((5, n_features)), **params)


LEARNED_PARAMS = [
    {},
    {"parametrization": "alista", "n_layers": 2},
    {"parametrization": "coupled", "validation_fraction": 0.0},
    {"parametrization": "lista", "relative_alpha": True, "batch_size": 8},
    {"parametrization": "lista", "pretrain": None, "optimizer": "adam"},
]


def _learned(n_features=3, **params):
    rng = np.random.default_rng(0)
    base = {"n_layers": 3, "max_iter": 3, "random_state": 0}
    return LearnedSparseCoder(
        rng.standard_normal((5, n_features)), **{**base, **params}
    )


def _expected_failed_checks(estimator):
    if isinstance(estimator, (UnrolledSparseCoder, LearnedSparseCoder)):
        return dict.fromkeys(FIXED_DICTIONARY_CHECKS, REASON)
    return {}


@parametrize_with_checks(
    [_coder(**params) for params in CODER_PARAMS]
    + [_learned(**params) for params in LEARNED_PARAMS]
    + [_dl(**params) for params in DL_PARAMS]
    + [_cdl(**params) for params in CDL_PARAMS]
    + [_mixmate(**params) for params in MIXMATE_PARAMS]
    + SBL
    + [_fa(**params) for params in FA_PARAMS],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("params", CODER_PARAMS)
@pytest.mark.parametrize("check_name", sorted(FIXED_DICTIONARY_CHECKS))
def test_coder_checks_with_matching_dictionary(check_name, params):
    coder = _coder(FIXED_DICTIONARY_CHECKS[check_name], **params)
    getattr(estimator_checks, check_name)("UnrolledSparseCoder", coder)


@pytest.mark.parametrize("params", LEARNED_PARAMS)
@pytest.mark.parametrize(
    "check_name",
    # the stateless check is not among a fitted transformer's checks
    sorted(set(FIXED_DICTIONARY_CHECKS) - {"check_transformers_unfitted_stateless"}),
)
def test_learned_coder_checks_with_matching_dictionary(check_name, params):
    coder = _learned(FIXED_DICTIONARY_CHECKS[check_name], **params)
    getattr(estimator_checks, check_name)("LearnedSparseCoder", coder)
