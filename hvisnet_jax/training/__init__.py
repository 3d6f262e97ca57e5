"""Training: dense targets (inner centers), losses, the trainer, device sharding."""
