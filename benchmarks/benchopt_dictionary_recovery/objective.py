from benchmark_utils import lasso_objective, recovery_scores
from benchopt import BaseObjective


class Objective(BaseObjective):
    """Recovery of a planted dictionary, and the lasso cost of the learned one.

    Every solver learns ``n_components`` atoms from ``X`` alone, for the lasso
    cost ``mean_i min_z 0.5 ||x_i - z D||^2 + alpha ||z||_1`` with unit-norm
    atoms. Metrics: the fraction of planted atoms recovered (sine of the angle
    to the matched learned atom below ``threshold``), the median atom error,
    and the lasso cost (``value``, solved exactly by skunroll's
    ``sparse_encode``).
    """

    name = "Dictionary recovery"
    url = "https://example.invalid/skunroll"
    requirements = ["pip::skunroll"]
    min_benchopt_version = "1.7"

    # Solvers are evaluated after 0, 1, 2, 4, 8, ... epochs (their get_next).
    sampling_strategy = "iteration"

    parameters = {"alpha": [0.1], "threshold": [0.1]}

    def set_data(self, X, D_true):
        self.X, self.D_true = X, D_true

    def get_objective(self):
        return dict(X=self.X, alpha=self.alpha, n_components=self.D_true.shape[0])

    def evaluate_result(self, D):
        rate, median = recovery_scores(self.D_true, D, self.threshold)
        return dict(
            value=lasso_objective(self.X, D, self.alpha),
            recovery_rate=rate,
            median_atom_error=median,
        )

    def get_one_result(self):
        return dict(D=self.D_true[::-1].copy())
