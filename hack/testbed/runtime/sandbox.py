"""A pod's network sandbox: its own network namespace on the cluster bridge, holding the pod IP."""

from __future__ import annotations

from pathlib import Path

from hack.base.proc import kill_all, sh
from hack.testbed.state import Network

__all__ = ["Sandbox", "attach"]


class Sandbox:
    """The sandbox of the pod ``uid``: network namespace ``fsp-<uid[:8]>``, host side of its veth ``fsv<uid[:8]>``."""

    def __init__(self, uid: str) -> None:
        self.netns, self.host_if = f"fsp-{uid[:8]}", f"fsv{uid[:8]}"

    def exists(self) -> bool:
        return Path(f"/run/netns/{self.netns}").exists()

    def create(self, ip: str, net: Network) -> None:
        attach(self.netns, self.host_if, ip, net)

    def pids(self) -> list[str]:
        return sh(["ip", "netns", "pids", self.netns], check=False).stdout.split()

    def kill_processes(self) -> None:
        """Every process still in the namespace (strays that joined it, or those of a runtime killed hard)."""
        kill_all(self.pids())

    def remove(self) -> None:
        """Remove the namespace and the veth (also when creating it failed half way)."""
        sh(["ip", "netns", "del", self.netns], check=False)
        sh(["ip", "link", "del", self.host_if], check=False)


def attach(netns: str, host_if: str, ip: str, net: Network) -> None:
    """Network namespace ``netns`` on the cluster bridge: a veth pair (``eth0`` inside, ``host_if`` on the
    bridge), ``ip`` and the default route through the bridge."""
    sh(["ip", "netns", "add", netns])
    sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns])
    sh(["ip", "link", "set", host_if, "master", net.bridge, "up"])
    for args in (
        ["addr", "add", f"{ip}/{net.net.prefixlen}", "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["link", "set", "lo", "up"],
        ["route", "add", "default", "via", net.bridge_ip],
    ):
        sh(["ip", "-n", netns, *args])
