"""Synthetic human videos with exact ground truth: rendering, a training source, held-out evaluation."""
