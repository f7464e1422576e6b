"""Measurements of trained states: the Hessian spectrum, sharpness and the
loss landscape.

`measure.Analyzer` measures a state on a fixed subset of the training data
(the function `objective` defines); `hessian` holds the estimators over any
symmetric operator (Lanczos, Hutchinson, stochastic Lanczos quadrature),
`sharpness` and `landscape` the sharpness measures and filter-normalized
directions, `stability` the exact per-example Hessians of small models,
`parts` the parts an analysis is made of, `settings` their checks, `plots`
the figures. analyze.py is the command line; training
logs `training.TrainingAnalysis` every `config.analysis_every_epochs` epochs.
"""
