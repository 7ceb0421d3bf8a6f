"""Training: config, data, checkpoints with resume, the loop (single process or DDP)."""
