"""Compute: FLOPs per step, device throughput, the training-time and memory estimate, and MFU.

- ``flops.py``   FLOPs of one forward + backward on the real model (FlopCounterMode), per layer; activations
- ``peak.py``    matmul peak measured here, or nominal for a named GPU; device memory
- ``timing.py``  seconds per real training step and per validation pass, on a throwaway copy
- ``memory.py``  parameters, gradients, optimizer state, activations, data
- ``estimate.py`` the ``Estimate`` and its arithmetic; ``compute_metrics`` after a run
"""

from trainwright.compute.estimate import Estimate, compute_metrics, compute_summary, estimate_training

__all__ = ["Estimate", "compute_metrics", "compute_summary", "estimate_training"]
