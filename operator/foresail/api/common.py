"""Patterns and enums shared by the resources' models (a leaf module: the models import it, it imports
none of them, so that api.rollout can use EvalJob's types inside InferenceService's spec)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DNS_LABEL", "IMAGE", "LABEL_VALUE", "QUANTITY", "Priority"]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A label value (nodes are selected on nvidia.com/gpu.product=<value>): 63 characters, alphanumeric at both ends
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# An image reference holds no whitespace (the apiserver refuses a container image with surrounding spaces)
IMAGE = r"^\S+$"
# A non-negative Kubernetes quantity (resource requests and limits cannot be negative)
QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][-+]?[0-9]+)?$"


class Priority(StrEnum):
    """Priority classes; the chart installs a PriorityClass for each (foresail-<priority>)."""

    CRITICAL = "critical"
    STANDARD = "standard"
    BATCH = "batch"
