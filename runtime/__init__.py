"""What runs the programs on the machine: the device mesh and collectives
(parallel), several processes as one run (distributed), what XLA:CPU needs
(xla_cpu), and the per-user caches on disk (compilation_cache,
disk_cache)."""
