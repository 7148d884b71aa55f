"""The fake GPU nodes kwok keeps Ready: capacity, GPU labels (product cycled over the nodes), zones. Pure."""

from __future__ import annotations

from typing import Any

from foresail.api.objects import GPU_PRODUCT_LABEL
from hack.testbed.state import FAKE_NODE_ANNOTATION

__all__ = ["DEFAULT_GPU_PRODUCT", "node_manifests"]

DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def node_manifests(nodes: int, gpus_per_node: int, gpu_products: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in range(nodes):
        name = f"gpu-node-{i}"
        res = {"cpu": "64", "memory": "512Gi", "pods": "110", "ephemeral-storage": "1Ti", "nvidia.com/gpu": str(gpus_per_node)}
        out.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "type": "kwok", "nvidia.com/gpu.present": "true", GPU_PRODUCT_LABEL: gpu_products[i % len(gpu_products)],
                    "nvidia.com/gpu.count": str(gpus_per_node), "topology.kubernetes.io/zone": f"local-{'abcd'[i % 4]}",
                },
            },
            "status": {"capacity": res, "allocatable": res},
        })  # fmt: skip
    return out
