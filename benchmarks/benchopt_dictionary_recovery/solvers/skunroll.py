import warnings

from benchmark_utils import initial_dictionary, next_epochs
from benchopt import BaseSolver
from sklearn.exceptions import ConvergenceWarning

from skunroll import UnrolledDictionaryLearning


class Solver(BaseSolver):
    """skunroll's unrolled dictionary learning, for each gradient and encoder."""

    name = "skunroll"
    requirements = ["pip::skunroll"]
    parameters = {
        "gradient": ["dec", "ae-ls", "ae-lasso", "auto"],
        "encoder": ["fista", "ista"],
        "n_unroll": [30],
        "batch_size": [128],
    }

    def set_objective(self, X, alpha, n_components):
        self.X, self.alpha, self.n_components = X, alpha, n_components

    def warm_up(self):
        # numba compiles (or loads from its cache) outside the timed runs
        self.run_once(1)

    def get_next(self, stop_val):
        return next_epochs(stop_val)

    def run(self, n_epochs):
        if n_epochs == 0:
            self.D = initial_dictionary(self.X, self.n_components, 0)
            return
        est = UnrolledDictionaryLearning(
            self.n_components, alpha=self.alpha, gradient=self.gradient,
            encoder=self.encoder, n_unroll=self.n_unroll,
            batch_size=self.batch_size, max_iter=n_epochs, tol=0.0,
            random_state=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(self.X)
        self.D = est.components_

    def get_result(self):
        return dict(D=self.D)
