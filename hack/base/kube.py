"""The one Kubernetes API helper of hack/ and e2e/: REST calls with client certificates and the pinned kubectl.

REST (standard library, no process per call) for what programs do in loops: the pod runtime, the cluster's
start-up checks, samplers and waits. kubectl for what reads best as a command line in tests and demos
(short names, ``-l``, ``auth can-i``, server-side dry runs).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Credentials", "Kube", "KubeError"]


class KubeError(Exception):
    """An API call answered with an HTTP error: ``code`` and the apiserver's message."""

    def __init__(self, method: str, path: str, code: int, body: str) -> None:
        try:
            message = str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            message = body
        super().__init__(f"{method} {path}: HTTP {code}: {message[:500]}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """Where the apiserver is and the client certificate to call it with."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path


class Kube:
    def __init__(self, creds: Credentials, kubeconfig: Path, kubectl: Path, timeout: float = 15.0) -> None:
        self.creds = creds
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ REST

    def ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                ctx = ssl.create_default_context(cafile=str(self.creds.ca_file))
                ctx.load_cert_chain(str(self.creds.cert_file), str(self.creds.key_file))
                self._ssl = ctx
            return self._ssl

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bool = False,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """One call: the parsed JSON answer (text with ``raw``); an HTTP error raises :class:`KubeError`."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.creds.server + path, data=data, method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout or self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise KubeError(method, path, e.code, e.read().decode(errors="replace")) from None
        return text if raw else json.loads(text)

    def api_get(self, path: str) -> Any | None:
        """GET ``path``; None when it does not exist."""
        try:
            return self.api("GET", path)
        except KubeError as e:
            if e.code == 404:
                return None
            raise

    def watch(self, path: str, resource_version: str, timeout_s: int = 300) -> Iterator[dict[str, Any]]:
        """The watch events of a collection from ``resource_version`` (bookmarks included) until the server ends it."""
        sep = "&" if "?" in path else "?"
        query = f"watch=1&allowWatchBookmarks=true&resourceVersion={resource_version}&timeoutSeconds={timeout_s}"
        req = urllib.request.Request(f"{self.creds.server}{path}{sep}{query}")
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout_s + 30) as resp:
            for line in resp:
                yield json.loads(line)

    def pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        """The pods of ``namespace`` (matching a label ``selector``)."""
        query = f"?labelSelector={urllib.parse.quote(selector)}" if selector else ""
        items: list[dict[str, Any]] = self.api("GET", f"/api/v1/namespaces/{namespace}/pods{query}")["items"]
        return items

    # ------------------------------------------------------------ kubectl

    def kubectl_cmd(self, *args: str) -> list[str]:
        return [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.kubectl_cmd(*args), text=True, capture_output=True, input=input, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def get(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(
        self, manifest: dict[str, Any] | list[dict[str, Any]] | str, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl apply`` an object, a list of objects or YAML text."""
        return self.kubectl("apply", *_ns(namespace), "-f", "-", input=_text(manifest), check=check)

    def create(
        self, manifest: dict[str, Any] | list[dict[str, Any]] | str, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("create", *_ns(namespace), "-f", "-", input=_text(manifest), check=check)


def _ns(namespace: str | None) -> list[str]:
    return ["-n", namespace] if namespace else []


def _text(manifest: dict[str, Any] | list[dict[str, Any]] | str) -> str:
    if isinstance(manifest, str):
        return manifest
    if isinstance(manifest, list):  # JSON is YAML; kubectl takes a v1 List of any objects
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": manifest})
    return json.dumps(manifest)
