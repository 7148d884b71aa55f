"""The pure parts of the local cluster: address plan, subnet choice, node manifests, component command lines."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hack.testbed.cluster import components, prometheus
from hack.testbed.cluster.network import pick_network
from hack.testbed.cluster.nodes import node_manifests
from hack.testbed.runtime.launch import pod_files
from hack.testbed.state import Network, RunDir, State


def test_network_address_plan() -> None:
    net = Network(bridge="fsbr000000", subnet="10.210.0.0/16", client_ns="fs-x-client")
    assert net.bridge_ip == "10.210.0.1"
    assert net.client_ip == "10.210.0.2"
    kwok_pods = ipaddress.IPv4Network(net.pod_cidr, strict=False)
    runtime_pods = ipaddress.IPv4Network(net.runtime_pod_cidr)
    assert kwok_pods.subnet_of(net.net) and runtime_pods.subnet_of(net.net)
    assert not kwok_pods.overlaps(runtime_pods)
    for ip in (net.bridge_ip, net.client_ip):
        assert ipaddress.IPv4Address(ip) not in kwok_pods and ipaddress.IPv4Address(ip) not in runtime_pods
    assert net.prometheus_url == "http://10.210.0.2:9090"


@pytest.mark.parametrize(
    ("name", "used", "expect_octet_in"),
    [
        ("nothing used: the name's own subnet", "", range(200, 250)),
        ("every 10.2xx subnet used but one", "".join(f" 10.{o}.0.1/16" for o in range(200, 250) if o != 222), range(222, 223)),
    ],
)
def test_pick_network_avoids_used_subnets(name: str, used: str, expect_octet_in: range) -> None:
    net = pick_network("e2e", used)
    assert int(net.subnet.split(".")[1]) in expect_octet_in, name
    assert net.client_ns == "fs-e2e-client" and len(net.bridge) <= 15


def test_pick_network_fails_when_none_is_free() -> None:
    with pytest.raises(RuntimeError, match="no free"):
        pick_network("e2e", "".join(f" 10.{o}.0.1/16" for o in range(200, 250)))


def test_clusters_with_different_names_get_different_subnets() -> None:
    assert pick_network("e2e", "").subnet != pick_network("demo", "").subnet


def test_node_manifests_carry_gpus_and_cycle_products() -> None:
    nodes = node_manifests(3, 4, ["A", "B"])
    assert [n["metadata"]["name"] for n in nodes] == ["gpu-node-0", "gpu-node-1", "gpu-node-2"]
    assert [n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in nodes] == ["A", "B", "A"]
    for n in nodes:
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert "spec" not in n or not n["spec"].get("taints")


def test_state_round_trips_through_the_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESAIL_RUN_DIR", str(tmp_path))
    run = RunDir("unit")
    assert run.path == tmp_path / "unit" and run.load() is None
    run.path.mkdir()
    net = Network(bridge="fsbr1", subnet="10.211.0.0/16", client_ns="fs-unit-client")
    state = State("unit", 2, 8, ["A"], net, {"apiserver": 6443}, pids={"etcd": 12})
    run.save(state)
    assert run.load() == state
    assert run.admin_credentials(state).server == "https://10.211.0.1:6443"


def test_components_listen_only_on_the_bridge_and_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESAIL_RUN_DIR", str(tmp_path))
    run, bins = RunDir("unit"), Path("/bin-dir")
    net = Network(bridge="fsbr1", subnet="10.211.0.0/16", client_ns="fs-unit-client")
    ports = {"etcd": 1, "etcd_peer": 2, "apiserver": 3, "kcm": 4, "scheduler": 5, "kwok": 6}
    api = components.apiserver(bins, run, net, ports)
    assert "--bind-address=10.211.0.1" in api and f"--client-ca-file={run.pki / 'ca.crt'}" in api
    for argv in (components.controller_manager(bins, run, ports), components.scheduler(bins, run, ports)):
        assert "--bind-address=127.0.0.1" in argv
    assert "--listen-client-urls" in components.etcd(bins, run, ports)
    prom = components.prometheus(bins, run, net, run.path / "prometheus.yml")
    assert prom[:4] == ["ip", "netns", "exec", "fs-unit-client"] and "--web.listen-address=10.211.0.2:9090" in prom


def test_prometheus_scrapes_the_metrics_port_with_the_service_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESAIL_RUN_DIR", str(tmp_path))
    cfg = prometheus.scrape_config(RunDir("unit"), "https://10.211.0.1:3")
    job, operator = cfg["scrape_configs"]
    assert (job["job_name"], operator["job_name"]) == ("triton", "foresail-operator")
    assert operator["relabel_configs"] == prometheus.OPERATOR_RELABEL
    assert job["kubernetes_sd_configs"][0]["api_server"] == "https://10.211.0.1:3"
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod", "foresail_dev_inferenceservice"} <= targets
    (binding,) = [obj for path, obj in prometheus.rbac() if path.endswith("clusterrolebindings")]
    assert binding["subjects"][0]["name"] == prometheus.USER


def test_prometheus_operated_is_a_headless_service_naming_the_clusters_prometheus(tmp_path: Path) -> None:
    objs = {obj["kind"]: obj for _, obj in prometheus.operated_service("10.211.0.2")}
    assert objs["Service"]["metadata"] == objs["Endpoints"]["metadata"]
    assert (objs["Service"]["metadata"]["namespace"], objs["Service"]["metadata"]["name"]) == ("monitoring", "prometheus-operated")
    assert objs["Service"]["spec"]["clusterIP"] == "None" and "selector" not in objs["Service"]["spec"]
    assert objs["Endpoints"]["subsets"][0]["addresses"] == [{"ip": "10.211.0.2"}]
    assert objs["EndpointSlice"]["endpoints"][0]["addresses"] == ["10.211.0.2"]
    pod = {"metadata": {"name": "p", "namespace": "a"}}
    pod_files(tmp_path, pod, "10.211.1.5", [("monitoring", "prometheus-operated", "10.211.0.2")])
    hosts = (tmp_path / "etc/hosts").read_text().splitlines()
    assert hosts[-1] == "10.211.0.2\tprometheus-operated.monitoring.svc prometheus-operated.monitoring.svc.cluster.local"
