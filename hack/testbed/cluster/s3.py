"""The cluster's S3-compatible object store on demand (``Cluster.start_s3``): SeaweedFS (``weed server``:
master, volume, filer and its S3 gateway in one process) in the client namespace like Prometheus, with one
identity from an ``-s3.config`` file. Pure (configuration, command and a SigV4-signed request helper)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from foresail.clients.sigv4 import Credentials, sign
from hack.testbed.state import Network, RunDir

__all__ = ["FILER_PORT", "S3_PORT", "S3Server", "s3_config", "seaweedfs_command"]

S3_PORT = 8333
FILER_PORT = 8888  # serves every object over plain HTTP too: /buckets/<bucket>/<key>
MASTER_PORT = 9333
VOLUME_PORT = 8080


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://<client ip>:8333 (path-style S3)
    filer: str  # http://<client ip>:8888
    access_key: str
    secret_key: str

    @property
    def creds(self) -> Credentials:
        return Credentials(self.access_key, self.secret_key)

    def archive_url(self, bucket: str, key: str) -> str:
        """A plain HTTP URL of an object (the filer's, unauthenticated): what an http(s) storageUri fetches."""
        return f"{self.filer}/buckets/{bucket}/{quote(key)}"

    def signed(self, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str]]:
        """URL and headers of a SigV4-signed request (``path``: /bucket[/key])."""
        url = f"{self.endpoint}{quote(path)}"
        headers = {"host": urlsplit(url).netloc}
        headers.update(sign(method, url, headers, self.creds, "us-east-1", "s3", datetime.now(UTC), hashlib.sha256(body).hexdigest()))
        return url, headers


def s3_config(access_key: str, secret_key: str) -> dict[str, object]:
    """SeaweedFS's ``-s3.config``: one identity allowed everything."""
    return {
        "identities": [
            {
                "name": "foresail-e2e",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def seaweedfs_command(bin_dir: Path, run: RunDir, net: Network, config: Path) -> list[str]:
    """``weed server`` with the S3 gateway on the client address; its gRPC ports are the HTTP ones + 10000,
    its sockets in the run directory (not /tmp, where another cluster's would collide)."""
    data = run.data / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    ip = net.client_ip
    return [
        "ip", "netns", "exec", net.client_ns, str(bin_dir / "weed"), "server", f"-dir={data}", f"-ip={ip}", f"-ip.bind={ip}",
        f"-master.port={MASTER_PORT}", f"-volume.port={VOLUME_PORT}", "-volume.max=8", "-master.volumeSizeLimitMB=64",
        "-filer", f"-filer.port={FILER_PORT}", f"-filer.localSocket={data / 'filer.sock'}",
        "-s3", f"-s3.port={S3_PORT}", f"-s3.config={config}", f"-s3.localSocket={data / 's3.sock'}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip


def write_config(path: Path, access_key: str, secret_key: str) -> None:
    path.write_text(json.dumps(s3_config(access_key, secret_key), indent=1))
    path.chmod(0o600)
