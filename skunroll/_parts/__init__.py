"""The parts an unrolled network is made of, one module per axis.

- :mod:`.priors`: priors on the codes (the encoder's activation: names,
  step-scaled proximal parameters, groups);
- :mod:`.likelihoods`: likelihoods of the data (inverse links, curvature
  bounds of the encoder step);
- :mod:`.encoders`: encoder algorithms (ISTA, FISTA: the step and the
  momentum schedule);
- :mod:`.dictionaries`: parametrisations of the dictionary (unit-norm,
  non-negative atoms, rank-1 kernels).

The numba side of each axis is one kernel module in ``skunroll/_kernels``
(integer dispatch gathered there, so that ``cache=True`` keeps working).
"""
