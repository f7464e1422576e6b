"""What report.py builds a report from: the runs under a sweep's directory
(runs.py), their statistics (stats.py), and the tables (tables.py) and
figures (figures.py) it writes. Imports neither JAX nor TensorFlow."""
