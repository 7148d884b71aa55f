"""The cluster's image registry (the CNCF distribution registry, Debian's ``docker-registry``) on the cluster
network, the images pushed to it under their own names (``<registry>/ghcr.io/foresail/foresail:0.1.0``), and
the mirror configuration that sends pulls of ``ghcr.io/...`` and ``nvcr.io/...`` there first, in containerd's
``hosts.toml`` format: what a cluster whose nodes pull through a cache looks like."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hack import tools
from hack.images.build import BuiltImage
from hack.testbed.state import Network, RunDir

__all__ = ["hosts_toml", "push_all", "registry_command", "registry_config", "write_mirrors"]


def registry_config(run: RunDir, net: Network) -> dict[str, Any]:
    """The registry's configuration (JSON is YAML): storage under the run directory, HTTP on the cluster network."""
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(run.registry / "data")}, "delete": {"enabled": True}},
        "http": {"addr": net.registry, "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }


def registry_command(run: RunDir, net: Network) -> list[str]:
    """The registry runs in the client namespace (like Prometheus): reachable from pods and from the host."""
    cfg = run.registry / "config.yml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(registry_config(run, net), indent=1))
    binary = tools.TOOLS_BY_NAME["oci"].dir / "bin/docker-registry"
    return ["ip", "netns", "exec", net.client_ns, str(binary), "serve", str(cfg)]


def hosts_toml(upstream: str, mirror: str) -> str:
    """containerd's ``hosts.toml`` for registry ``upstream``: the mirror first (resolve and pull; its path holds
    the upstream's name), then the upstream itself. Pure."""
    return (
        f"# pulls of {upstream}/... go to the cluster's registry first, as to a pull-through cache\n"
        f'server = "https://{upstream}"\n\n'
        f'[host."http://{mirror}/v2/{upstream}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        "  override_path = true\n"
    )


def write_mirrors(run: RunDir, net: Network, upstreams: Iterable[str]) -> None:
    """A mirror entry per upstream registry, and the cluster registry itself reached over plain HTTP (images
    pushed to it by name, as a user pushes an OCI archive to their registry)."""
    for up in sorted(set(upstreams)):
        f = run.mirrors / up / "hosts.toml"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(hosts_toml(up, net.registry))
    own = run.mirrors / net.registry / "hosts.toml"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(f'# the cluster\'s own registry serves plain HTTP\nserver = "http://{net.registry}"\n')


def _push(img: BuiltImage, registry: str, results: dict[str, str], errors: list[str]) -> None:
    skopeo = tools.TOOLS_BY_NAME["oci"].dir / "bin/skopeo"
    with tempfile.NamedTemporaryFile("r", prefix="foresail-digest-") as digest:
        proc = subprocess.run(
            [str(skopeo), "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false", "--preserve-digests",
             "--digestfile", digest.name, f"oci:{img.layout}:{img.tag}", f"docker://{registry}/{img.reference}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        pushed = Path(digest.name).read_text().strip()
    if proc.returncode != 0:
        errors.append(f"pushing {img.reference}: {proc.stderr.strip()[-800:]}")
    elif pushed != img.digest:
        errors.append(f"pushing {img.reference}: the registry holds {pushed}, the build made {img.digest}")
    else:
        results[img.reference] = img.digest


def push_all(images: Iterable[BuiltImage], net: Network) -> dict[str, str]:
    """Push every image (in parallel) with skopeo, digests preserved; returns reference -> digest."""
    results: dict[str, str] = {}
    errors: list[str] = []
    threads = [threading.Thread(target=_push, args=(img, net.registry, results, errors)) for img in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return results
