"""The cluster network on the host: a bridge on a free private /16 and the client network namespace on it."""

from __future__ import annotations

import zlib

from hack.base.proc import sh
from hack.testbed.runtime.sandbox import Sandbox, attach
from hack.testbed.state import Network, RunDir

__all__ = ["choose_network", "create_network", "destroy_network", "pick_network", "sweep_pod_sandboxes"]


def pick_network(name: str, host_addresses: str) -> Network:
    """The first 10.2xx.0.0/16 (from a hash of ``name``, so clusters side by side differ) that no address in
    ``host_addresses`` (the output of ``ip -o -4 addr show``) uses."""
    h = zlib.crc32(name.encode()) & 0xFFFF
    for i in range(50):
        octet = 200 + (h + i) % 50
        if f" 10.{octet}." not in host_addresses:
            return Network(bridge=f"fsbr{h:04x}{i:02d}"[:15], subnet=f"10.{octet}.0.0/16", client_ns=f"fs-{name}-client")
    raise RuntimeError("no free 10.2xx.0.0/16 subnet for the cluster bridge")


def choose_network(name: str) -> Network:
    return pick_network(name, sh(["ip", "-o", "-4", "addr", "show"]).stdout)


def create_network(net: Network) -> None:
    sh(["ip", "link", "add", net.bridge, "type", "bridge"])
    sh(["ip", "addr", "add", f"{net.bridge_ip}/16", "dev", net.bridge])
    sh(["ip", "link", "set", net.bridge, "up"])
    attach(net.client_ns, net.client_if, net.client_ip, net)


def destroy_network(net: Network) -> None:
    sh(["ip", "netns", "del", net.client_ns], check=False)
    sh(["ip", "link", "del", net.client_if], check=False)
    sh(["ip", "link", "del", net.bridge], check=False)


def sweep_pod_sandboxes(run: RunDir) -> list[str]:
    """Pod sandboxes the runtime could not remove (it was killed): their processes, then them."""
    removed = []
    for pod_dir in run.pods.glob("*"):
        sandbox = Sandbox(pod_dir.name)
        if sandbox.exists():
            sandbox.kill_processes()
            removed.append(sandbox.netns)
        sandbox.remove()
    return removed
