"""Sweeps: the grid and its runs (plan), running them on this machine
(local) or as SLURM jobs (slurm), and how each ended or stands."""
