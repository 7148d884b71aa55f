"""A CycloneDX 1.5 SBOM (JSON) of one image: the image itself (name, tag, digest) and every Debian package
and PyPI distribution its layers hold, with versions, package URLs and the SHA-256 of the archive each came
from. Pure and deterministic: the serial number derives from the image digest, the timestamp is the build's
``SOURCE_DATE_EPOCH``."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from hack.images.oci import rfc3339

__all__ = ["cyclonedx", "purl_deb", "purl_pypi"]


def purl_deb(name: str, version: str, arch: str) -> str:
    return f"pkg:deb/debian/{name}@{quote(version, safe='')}?arch={arch}&distro=debian-12"


def purl_pypi(name: str, version: str) -> str:
    return f"pkg:pypi/{name.lower().replace('_', '-')}@{quote(version, safe='')}"


def _component(kind: str, p: dict[str, Any]) -> dict[str, Any]:
    purl = purl_deb(p["name"], p["version"], p["arch"]) if kind == "deb" else purl_pypi(p["name"], p["version"])
    c: dict[str, Any] = {
        "type": "library",
        "bom-ref": purl,
        "name": p["name"],
        "version": p["version"],
        "purl": purl,
        "hashes": [{"alg": "SHA-256", "content": p["sha256"]}],
    }
    if p.get("license"):
        c["licenses"] = [{"expression": p["license"]}]
    return c


def cyclonedx(
    repository: str, tag: str, digest: str, debs: list[dict[str, Any]], wheels: list[dict[str, Any]], epoch: int
) -> dict[str, Any]:
    """The SBOM document; ``debs`` carry name, version, arch, sha256; ``wheels`` name, version, sha256, license."""
    name = repository.rsplit("/", 1)[-1]
    image_purl = f"pkg:oci/{name}@{quote(digest, safe='')}?repository_url={quote(repository, safe='/')}&tag={tag}"
    components = [_component("deb", p) for p in sorted(debs, key=lambda p: p["name"])]
    components += [_component("pypi", p) for p in sorted(wheels, key=lambda p: p["name"].lower())]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image_purl)}",
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(epoch),
            "tools": {"components": [{"type": "application", "name": "foresail hack.images"}]},
            "component": {
                "type": "container",
                "bom-ref": image_purl,
                "name": repository,
                "version": tag,
                "purl": image_purl,
                "hashes": [{"alg": "SHA-256", "content": digest.split(":", 1)[1]}],
            },
        },
        "components": components,
        "dependencies": [{"ref": image_purl, "dependsOn": [c["bom-ref"] for c in components]}],
    }
