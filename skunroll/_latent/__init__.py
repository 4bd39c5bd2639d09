"""Latent Gaussian models: factor analysis with missing data by
probabilistic unrolling (``UnrolledFactorAnalysis``)."""
