import warnings

from benchmark_utils import initial_dictionary, next_epochs
from benchopt import BaseSolver
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning


class Solver(BaseSolver):
    """scikit-learn's MiniBatchDictionaryLearning (online, lasso by CD).

    Per sample ``0.5 ||x - z D||^2 + alpha ||z||_1`` with ``||d_k|| <= 1``;
    early stopping off, so a run does all its epochs.
    """

    name = "sklearn-MiniBatchDL"
    requirements = ["scikit-learn"]
    parameters = {"batch_size": [128]}

    def set_objective(self, X, alpha, n_components):
        self.X, self.alpha, self.n_components = X, alpha, n_components

    def get_next(self, stop_val):
        return next_epochs(stop_val)

    def run(self, n_epochs):
        if n_epochs == 0:
            self.D = initial_dictionary(self.X, self.n_components, 0)
            return
        est = MiniBatchDictionaryLearning(
            self.n_components, alpha=self.alpha, batch_size=self.batch_size,
            max_iter=n_epochs, tol=0.0, max_no_improvement=None,
            fit_algorithm="cd", random_state=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(self.X)
        self.D = est.components_

    def get_result(self):
        return dict(D=self.D)
