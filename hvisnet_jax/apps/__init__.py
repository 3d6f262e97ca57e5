"""What a user runs: track a video, the demo, extract one person, benchmarks."""
