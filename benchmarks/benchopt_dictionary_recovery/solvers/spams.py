import os

import numpy as np
from benchmark_utils import initial_dictionary, next_epochs
from benchopt import BaseSolver

# SPAMS' OpenMP threads spin at barriers by default, which makes it several
# times slower when another process shares the cores; libgomp reads this when
# it loads (see benchmarks/bench_dictionary_recovery.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import spams  # noqa: E402


class Solver(BaseSolver):
    """SPAMS' trainDL (Mairal et al.'s online dictionary learning).

    ``mode=2`` is the lasso cost with ``lambda1 = alpha`` and atoms of norm at
    most 1; an epoch is ``n_samples / batch_size`` iterations.
    """

    name = "spams-trainDL"
    requirements = ["pip::spams-bin"]
    parameters = {"batch_size": [128]}

    def set_objective(self, X, alpha, n_components):
        self.X, self.alpha, self.n_components = X, alpha, n_components
        self.Xt = np.asfortranarray(X.T)  # columns are samples

    def get_next(self, stop_val):
        return next_epochs(stop_val)

    def run(self, n_epochs):
        if n_epochs == 0:
            self.D = initial_dictionary(self.X, self.n_components, 0)
            return
        n_iter = int(np.ceil(n_epochs * self.X.shape[0] / self.batch_size))
        D = spams.trainDL(
            self.Xt, K=self.n_components, lambda1=self.alpha, mode=2,
            batchsize=self.batch_size, iter=n_iter, numThreads=1, verbose=False,
        )  # fmt: skip
        self.D = np.ascontiguousarray(D.T)

    def get_result(self):
        return dict(D=self.D)
