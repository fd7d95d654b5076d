"""Speed against peers: the PyTorch and Flax peers (`peers`), the step benchmark
(`benchmark`), the step-time table (`step_time`) and time to quality
(`time_to_quality`). Above the studies layer: it may use any other package."""
