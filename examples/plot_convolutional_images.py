"""
==========================================
Convolutional kernels learned from a photo
==========================================

A convolutional dictionary models a whole image as a sum of a few small
kernels placed at sparse positions, instead of coding overlapping patches one
by one. :class:`~skunroll.ConvolutionalDictionaryLearning` learns 16 kernels of
8x8 pixels
from a single noisy photograph, and the sparse code maps it infers
reconstruct the image without most of the noise.

As usual for convolutional sparse coding of natural images, the smooth part
of the image (a Gaussian blur) is set aside and the kernels model the
remaining high-pass detail; the denoised image is the blur plus the
reconstruction of the detail.
"""

# %%
# A noisy photograph
# ------------------
# scikit-learn's "china" sample image in grey levels in [0, 1], downscaled by
# 2x2 averaging to 213x320 pixels, with Gaussian noise of standard deviation
# 0.075.
import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_sample_image

from skunroll import ConvolutionalDictionaryLearning

rgb = load_sample_image("china.jpg").astype(np.float64) / 255
image = rgb @ np.array([0.299, 0.587, 0.114])
image = image[: 2 * (image.shape[0] // 2), : 2 * (image.shape[1] // 2)]
image = (image[::2, ::2] + image[1::2, ::2] + image[::2, 1::2] + image[1::2, 1::2]) / 4
noisy = image + 0.075 * np.random.default_rng(0).standard_normal(image.shape)


def psnr(estimate):
    """Peak signal-to-noise ratio in dB, for intensities in [0, 1]."""
    return 10 * np.log10(1.0 / np.mean((estimate - image) ** 2))


low = gaussian_filter(noisy, 2.0)
detail = noisy - low
print(f"image of {image.shape[0]}x{image.shape[1]} pixels")
print(f"PSNR noisy: {psnr(noisy):.2f} dB; Gaussian blur alone: {psnr(low):.2f} dB")

# %%
# Learning the kernels
# --------------------
# One image is one sample of shape (1, height, width). ``alpha`` is twice the
# noise level: a kernel is used only where it explains more than the noise.
# The kernels are learned from the noisy image itself, so a smoothness
# penalty on their first differences (``kernel_smoothness``) keeps them from
# fitting the noise. Each epoch encodes the whole image with 30 unrolled FISTA
# steps (started from the previous epoch's codes) and moves the kernels along
# their gradient.
cdl = ConvolutionalDictionaryLearning(
    16,
    (8, 8),
    alpha=0.15,
    kernel_smoothness=2.0,
    max_iter=15,
    random_state=0,
    n_jobs=2,
    verbose=1,
)
start = time.perf_counter()
cdl.fit(detail[None, None])
print(f"learned in {time.perf_counter() - start:.1f} s ({cdl.n_iter_} epochs)")

# %%
# Denoising
# ---------
# The code maps of the noisy detail, decoded, plus the blur.
codes = cdl.code_maps(detail[None, None])
denoised = low + cdl.inverse_transform(codes)[0, 0]
print(f"{np.mean(codes != 0):.1%} of the code entries are non-zero")
print(f"PSNR denoised: {psnr(denoised):.2f} dB")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (title, img) in zip(
    axes,
    [
        ("original", image),
        (f"noisy, {psnr(noisy):.2f} dB", noisy),
        (f"ConvolutionalDictionaryLearning, {psnr(denoised):.2f} dB", denoised),
    ],
    strict=True,
):
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
fig.tight_layout()
plt.show()

# %%
# The kernels
# -----------
# Edges, bars and gratings at several orientations, each kernel with its own
# grey scale; learned from noisy data, some remain grainy.
fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
for ax, kernel in zip(axes.ravel(), cdl.kernels_[:, 0], strict=True):
    ax.imshow(kernel, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
fig.suptitle("16 kernels of 8x8 pixels")
fig.tight_layout()
plt.show()
