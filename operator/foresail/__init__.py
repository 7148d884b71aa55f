"""Foresail: predictive autoscaling control plane for NVIDIA Triton inference on Kubernetes."""

__all__ = ["__version__"]

__version__ = "0.1.0"
