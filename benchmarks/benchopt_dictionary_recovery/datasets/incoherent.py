from benchmark_utils import planted_data
from benchopt import BaseDataset

from skunroll.recovery import make_coherent_dictionary


class Dataset(BaseDataset):
    """Planted dictionary of a given mutual coherence.

    ``skunroll.recovery.make_coherent_dictionary``: pairs of atoms at inner
    product ``coherence``, no two other atoms more correlated than that.
    """

    name = "incoherent"
    requirements = ["pip::skunroll"]
    parameters = {
        "n_samples, n_features, n_components": [(4000, 32, 48)],
        "coherence": [0.3, 0.9],
        "n_nonzero_coefs": [3],
        "noise": [0.0],
        "seed": [0],
    }

    def get_data(self):
        D = make_coherent_dictionary(
            self.n_components, self.n_features, self.coherence, random_state=self.seed
        )
        return planted_data(
            D, self.n_samples, self.n_nonzero_coefs, self.noise, self.seed
        )
