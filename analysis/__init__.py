"""Measurements of trained states: the Hessian spectrum, sharpness and the
loss landscape.

`measure.Analyzer` measures a state on a fixed subset of the training data
(the function `objective` defines); `hessian` holds the estimators over any
symmetric operator (Lanczos, Hutchinson, stochastic Lanczos quadrature),
`sharpness` and `landscape` the sharpness measures and filter-normalized
directions, `plots` the figures. analyze.py is the command line; training
logs `measure.TrainingAnalysis` every `config.analysis_every_epochs` epochs.
"""
