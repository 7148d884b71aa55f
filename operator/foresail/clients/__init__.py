"""The only IO of the operator: Kubernetes, Prometheus (async) and Triton clients."""
