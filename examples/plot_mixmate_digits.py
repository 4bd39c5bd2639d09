"""
========================================================
Clustering digits with a mixture of sparse auto-encoders
========================================================

:class:`~skunroll.MixMateClustering` (MixMate, Lin, Song & Ba,
ICASSP 2022) gives every cluster a small dictionary and an unrolled FISTA
encoder tied to it. A sample goes to the cluster whose dictionary explains it
with the lowest lasso energy ``0.5 ||x - z D_k||^2 + alpha ||z||_1``; training
lowers the responsibility-weighted energy by back-propagation through the
encoders and the softmax.

On the 8x8 digits of :func:`sklearn.datasets.load_digits` (scaled to [0, 1]),
each cluster learns eight atoms: parts and strokes of one digit. We compare
the clusters with the true classes (matched by the Hungarian algorithm) and
with k-means, which starts MixMate.
"""

# %%
# Data and fit
# ------------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix, normalized_mutual_info_score

from skunroll import MixMateClustering
from skunroll.metrics import clustering_accuracy  # Hungarian-matched accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel intensities are 0..16

t0 = time.perf_counter()
mixmate = MixMateClustering(10, random_state=0).fit(X)
t_mixmate = time.perf_counter() - t0
kmeans = KMeans(10, n_init=10, random_state=0).fit(X)


for name, labels in [("k-means", kmeans.labels_), ("MixMate", mixmate.labels_)]:
    acc = clustering_accuracy(y, labels)
    nmi = normalized_mutual_info_score(y, labels)
    print(f"{name:8s} accuracy {acc:.3f}  NMI {nmi:.3f}")
print(f"MixMate: {mixmate.n_iter_} epochs, {t_mixmate:.1f} s, "
      f"{mixmate.components_.size} parameters")  # fmt: skip

# %%
# The atoms of every cluster
# --------------------------
# Row ``d`` shows the eight atoms of the cluster matched to digit ``d``
# (red positive, blue negative). Each dictionary holds strokes of its digit:
# a sample is a sparse combination of them.
# ``order[d]`` is the cluster matched to digit ``d``
acc, order = clustering_accuracy(y, mixmate.labels_, return_order=True)
counts = confusion_matrix(y, mixmate.labels_)[:, order]
n_atoms = mixmate.components_.shape[1]
fig, axes = plt.subplots(10, n_atoms, figsize=(n_atoms * 0.9, 10 * 0.9))
for digit, cluster in enumerate(order):
    for j in range(n_atoms):
        atom = mixmate.components_[cluster, j].reshape(8, 8)
        lim = np.abs(atom).max()
        ax = axes[digit, j]
        ax.imshow(atom, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[digit, 0].set_ylabel(str(digit), rotation=0, labelpad=10)
fig.suptitle("MixMate atoms, one row per cluster (matched digit on the left)")
plt.show()

# %%
# Confusion matrix
# ----------------
# Rows are true digits, columns the matched clusters; the diagonal holds the
# correctly clustered images.
fig, ax = plt.subplots(figsize=(5.5, 5))
im = ax.imshow(counts, cmap="Blues")
for i in range(10):
    for j in range(10):
        if counts[i, j]:
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7,
                    color=color)  # fmt: skip
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_xlabel("cluster (matched to a digit)")
ax.set_ylabel("true digit")
ax.set_title(f"MixMate on digits: accuracy {acc:.3f}")
fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()
