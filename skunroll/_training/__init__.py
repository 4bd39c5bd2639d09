"""Training: the one minibatch trainer, the optimisers and the shared
mechanics of a fit (atomic fits, scikit-learn's callback API)."""

from ._base import CallbackSupportMixin, atomic, with_callbacks
from .optim import OPTIMIZERS, SGD, Adam
from .trainer import (
    MAX_HALVINGS,
    Sums,
    Trainer,
    TrainingState,
    combine_sums,
    converged,
)

__all__ = [
    "MAX_HALVINGS",
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "CallbackSupportMixin",
    "Sums",
    "Trainer",
    "TrainingState",
    "atomic",
    "combine_sums",
    "converged",
    "with_callbacks",
]
