"""A run: its directory (rundir: lock, config.json, checkpoints), its state
(run_state: TrainState, initialization, restoring), what it writes for
people and reports (run_log: TensorBoard, the console, summary.json), and
how it ends or stands (outcomes)."""
