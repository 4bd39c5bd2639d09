"""
==========================================================
Clustered multi-task compressive sensing with CoFEM
==========================================================

:class:`~skunroll.ClusteredMultiTaskSBL` recovers several sparse signals, each
seen through few measurements, when the signals fall into groups that share a
support. Each group (cluster) has its own prior precisions; which task belongs
to which cluster is learned with them. With ``solver="cofem"`` the posterior
moments and the marginal likelihoods that assign the tasks to clusters come
from conjugate gradients on random probes (the log-determinants by stochastic
Lanczos quadrature), so only products with the design are needed: here the
rows of a DCT, of which every task observes a different random 35 %.

One model per task (``mode="separate"``) has too few measurements to find its
support; pooling the tasks of a cluster does.
"""

# %%
# Eight tasks in two clusters
# ---------------------------
# 256 coefficients, 10 non-zero per task, the same support within a cluster;
# 128 DCT rows, each task seeing about 45 of them, noise 0.01.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import adjusted_rand_score

from skunroll import ClusteredMultiTaskSBL
from skunroll.datasets import make_multitask_measurements

p, n, T, k = 256, 128, 8, 10
op, Y, mask, X, labels, _ = make_multitask_measurements(
    p,
    n,
    T,
    k,
    observed=0.35,
    noise=0.01,
    coef_distribution="signed_uniform",
    random_state=0,
)

clustered = ClusteredMultiTaskSBL(2, solver="cofem", random_state=0)
clustered.fit(op, Y, mask=mask)
separate = ClusteredMultiTaskSBL(mode="separate", solver="cofem", random_state=0)
separate.fit(op, Y, mask=mask)


def rel_error(coef):
    return np.linalg.norm(coef - X) / np.linalg.norm(X)


print(f"clustered: relative error {rel_error(clustered.coef_):.3f}, cluster ARI "
      f"{adjusted_rand_score(labels, clustered.labels_):.2f}")  # fmt: skip
print(f"separate:  relative error {rel_error(separate.coef_):.3f}")

# %%
# Recovered coefficients of two tasks, one per cluster, and the
# responsibilities of every task
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), width_ratios=[2, 2, 1])
for ax, t in zip(axes[:2], (0, T - 1), strict=True):
    ax.stem(X[t], linefmt="k-", markerfmt="ko", basefmt=" ", label="true")
    ax.plot(separate.coef_[t], "x", color="tab:orange", label="separate")
    ax.plot(clustered.coef_[t], ".", color="tab:blue", label="clustered")
    ax.set_title(f"task {t} (cluster {labels[t]})")
    ax.set_xlabel("coefficient")
axes[0].legend(loc="lower left", fontsize=8)
axes[2].imshow(clustered.responsibilities_, cmap="Blues", vmin=0, vmax=1)
axes[2].set_xlabel("cluster")
axes[2].set_ylabel("task")
axes[2].set_title("responsibilities")
fig.tight_layout()
plt.show()
