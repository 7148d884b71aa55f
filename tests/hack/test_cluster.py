"""The pure parts of the local cluster: address plan and node manifests."""

from __future__ import annotations

import ipaddress

from hack.cluster import Cluster, Network


def test_network_address_plan() -> None:
    net = Network(bridge="fsbr000000", subnet="10.210.0.0/16", client_ns="fs-x-client")
    assert net.bridge_ip == "10.210.0.1"
    assert net.client_ip == "10.210.0.2"
    pods = ipaddress.IPv4Network(net.pod_cidr, strict=False)
    assert pods.subnet_of(net.net)
    assert ipaddress.IPv4Address(net.bridge_ip) not in pods
    assert ipaddress.IPv4Address(net.client_ip) not in pods


def test_node_manifests_carry_gpus_and_cycle_products() -> None:
    c = Cluster(name="unit-test-no-state", nodes=3, gpus_per_node=4, gpu_products=["A", "B"])
    nodes = c.node_manifests()
    assert [n["metadata"]["name"] for n in nodes] == ["gpu-node-0", "gpu-node-1", "gpu-node-2"]
    assert [n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in nodes] == ["A", "B", "A"]
    for n in nodes:
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert "spec" not in n or not n["spec"].get("taints")
