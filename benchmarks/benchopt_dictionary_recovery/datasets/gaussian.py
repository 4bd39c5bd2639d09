from benchmark_utils import planted_data
from benchopt import BaseDataset

from skunroll.datasets import make_dictionary


class Dataset(BaseDataset):
    """Planted gaussian dictionary (``make_dictionary(kind="gaussian")``)."""

    name = "gaussian"
    requirements = ["pip::skunroll"]
    parameters = {
        "n_samples, n_features, n_components": [(4000, 32, 48)],
        "n_nonzero_coefs": [3],
        "noise": [0.0],
        "seed": [0],
    }

    def get_data(self):
        D = make_dictionary(
            self.n_components, self.n_features, kind="gaussian", random_state=self.seed
        )
        return planted_data(
            D, self.n_samples, self.n_nonzero_coefs, self.noise, self.seed
        )
