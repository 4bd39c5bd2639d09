"""skunroll: model-based (unrolled) sparse coding and dictionary learning.

skunroll turns iterative sparse-coding algorithms (ISTA/FISTA for the lasso,
orthogonal matching pursuit) into fixed-depth encoders whose weights are the
model's own dictionary, and exposes them as scikit-learn estimators. Hot loops
are numba kernels that release the GIL; a persistent pool of ``n_jobs`` threads
runs them over chunks of samples.

See the user guide in ``doc/`` and the examples in ``examples/``.
"""

from . import datasets, metrics, spikes, utils
from ._coding.sparse_coding import UnrolledSparseCoder, sparse_encode
from ._conv.dict_learning import ConvolutionalDictionaryLearning, ConvolutionalDL
from ._dense.dict_learning import UnrolledDictionaryLearning
from ._dense.mixmate import MixMateClustering
from ._latent.factor_analysis import UnrolledFactorAnalysis
from ._learned.coder import LearnedSparseCoder
from ._sbl.multitask import ClusteredMultiTaskSBL
from ._sbl.sbl import SparseBayesianLearning

__version__ = "0.1.0.dev0"

__all__ = [
    "ConvolutionalDL",
    "ConvolutionalDictionaryLearning",
    "LearnedSparseCoder",
    "MixMateClustering",
    "SparseBayesianLearning",
    "UnrolledDictionaryLearning",
    "UnrolledFactorAnalysis",
    "UnrolledSparseCoder",
    "datasets",
    "metrics",
    "sparse_encode",
    "spikes",
    "utils",
    "__version__",
    "ClusteredMultiTaskSBL",
]
