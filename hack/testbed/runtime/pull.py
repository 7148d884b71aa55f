"""Image pulls as a node's container runtime makes them: the reference normalised (``nginx`` is
``docker.io/library/nginx:latest``), the registry's endpoints from a containerd-style mirror configuration
(``<config>/<registry>/hosts.toml``: ``[host."URL"]`` mirrors in order, with ``capabilities`` and
``override_path``, then ``server``, the registry itself), credentials from the pod's image pull secrets
(``kubernetes.io/dockerconfigjson``, Basic or token authentication), the manifest (an index resolved to
linux/amd64) and blobs fetched over the distribution API with their digests checked. Errors carry the
registry's own message, as the kubelet reports them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_TYPES",
    "Endpoint",
    "PullError",
    "Reference",
    "Registry",
    "credentials",
    "endpoints",
    "parse_reference",
]

DOCKER_HUB = "docker.io"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    OCI_INDEX,
    DOCKER_LIST,
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[\w][\w.-]{0,127}$")


class PullError(Exception):
    """A pull that failed: ``code`` as the CRI reports it (NotFound, Unauthenticated, Unavailable, Unknown)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        """What the manifest is fetched by: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(image: str) -> Reference:
    """The normalised reference of ``image`` (ValueError naming what is wrong). Pure."""
    name, _, digest = image.partition("@")
    if digest and not DIGEST.match(digest):
        raise ValueError(f"invalid reference format: {image!r}: digest {digest!r} is not sha256:<64 hex>")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not REPOSITORY.match(path):
        raise ValueError(f"invalid reference format: {image!r}: repository name must be lowercase")
    if tag is not None and not TAG.match(tag):
        raise ValueError(f"invalid reference format: {image!r}: tag {tag!r}")
    return Reference(registry, path, tag if tag or digest else "latest", digest or None)


@dataclass(frozen=True)
class Endpoint:
    api: str  # the API root: http://host:port/v2, or the mirror's own path with override_path
    host: str  # host[:port], what credentials are looked up by
    capabilities: frozenset[str]


def _host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def endpoints(ref: Reference, config_dir: Path | None) -> list[Endpoint]:
    """Where to pull ``ref`` from: the mirrors of ``<config_dir>/<registry>/hosts.toml`` in their order,
    then the registry itself (``server``). Pure but for reading the file."""
    default = "https://registry-1.docker.io" if ref.registry == DOCKER_HUB else f"https://{ref.registry}"
    cfg: dict[str, Any] = {}
    if config_dir is not None:
        f = config_dir / ref.registry / "hosts.toml"
        if f.is_file():
            cfg = tomllib.loads(f.read_text())
    out = []
    for url, host in (cfg.get("host") or {}).items():
        caps = frozenset(host.get("capabilities", ("pull", "resolve", "push")))
        api = url.rstrip("/") if host.get("override_path") else url.rstrip("/") + "/v2"
        out.append(Endpoint(api, _host_of(url), caps))
    server = str(cfg.get("server", default)).rstrip("/")
    out.append(Endpoint(server + "/v2", _host_of(server), frozenset(("pull", "resolve", "push"))))
    return out


def credentials(secrets: list[dict[str, Any]], host: str) -> tuple[str, str] | None:
    """Username and password for ``host`` from image pull secrets' data (``.dockerconfigjson`` or the older
    ``.dockercfg``, base64 as in the Secret). Pure."""
    for data in secrets:
        try:
            if ".dockerconfigjson" in data:
                auths = json.loads(base64.b64decode(data[".dockerconfigjson"]))["auths"]
            elif ".dockercfg" in data:
                auths = json.loads(base64.b64decode(data[".dockercfg"]))
            else:
                continue
        except (ValueError, KeyError, TypeError):
            continue
        for key, entry in auths.items():
            if _host_of(key if "://" in key else f"//{key}") != host:
                continue
            if entry.get("username") is not None:
                return str(entry["username"]), str(entry.get("password", ""))
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
    return None


def _registry_message(body: bytes, fallback: str) -> str:
    """The registry's error as the CRI prints it: ``code: message`` from its JSON errors."""
    try:
        errors = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}" for e in errors)
    except (ValueError, KeyError, TypeError):
        return fallback


class Registry:
    """A distribution-API client for one pull: ``auth(host)`` gives credentials for a host."""

    def __init__(self, auth: Callable[[str], tuple[str, str] | None], timeout: float = 30.0) -> None:
        self.auth = auth
        self.timeout = timeout
        self.tokens: dict[str, str] = {}

    def _open(self, ep: Endpoint, url: str, accept: str = "") -> Any:
        headers = {"Accept": accept} if accept else {}
        if ep.host in self.tokens:
            headers["Authorization"] = self.tokens[ep.host]
        req = urllib.request.Request(url, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            body = e.read()
            if e.code == 401 and ep.host not in self.tokens and self._authenticate(ep, e.headers.get("WWW-Authenticate", "")):
                return self._open(ep, url, accept)
            code = {401: "Unauthenticated", 403: "PermissionDenied", 404: "NotFound"}.get(e.code, "Unknown")
            raise PullError(code, f"{url}: {_registry_message(body, f'HTTP {e.code} {e.reason}')}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PullError("Unavailable", f"failed to do request: GET {url}: {reason}") from None

    def _authenticate(self, ep: Endpoint, challenge: str) -> bool:
        """Answer a 401: Basic with the pull secret's credentials, or a token from the Bearer realm."""
        creds = self.auth(ep.host)
        scheme, _, params = challenge.partition(" ")
        basic = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode() if creds else None
        if scheme.lower() == "basic":
            if basic is None:
                return False
            self.tokens[ep.host] = basic
            return True
        if scheme.lower() != "bearer":
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        req = urllib.request.Request(f"{fields.get('realm', '')}?{query}", headers={"Authorization": basic} if basic else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                doc = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        token = doc.get("token") or doc.get("access_token")
        if not token:
            return False
        self.tokens[ep.host] = f"Bearer {token}"
        return True

    def manifest(self, ep: Endpoint, repository: str, ref: str) -> tuple[bytes, str, str]:
        """The manifest (bytes, media type, digest) of ``repository`` at ``ref``; an index is resolved to its
        linux/amd64 image."""
        with self._open(ep, f"{ep.api}/{repository}/manifests/{ref}", ", ".join(MANIFEST_TYPES)) as r:
            body, media = r.read(), r.headers.get("Content-Type", "").split(";")[0]
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if DIGEST.match(ref) and digest != ref:
            raise PullError("Unknown", f"manifest {ref} of {repository}: the registry sent content of digest {digest}")
        doc = json.loads(body)
        media = media or doc.get("mediaType", "")
        if media in (OCI_INDEX, DOCKER_LIST):
            for m in doc.get("manifests", []):
                p = m.get("platform", {})
                if p.get("os") == "linux" and p.get("architecture") == "amd64":
                    return self.manifest(ep, repository, m["digest"])
            raise PullError("NotFound", f"{repository}@{digest}: no match for platform in manifest: not found")
        return body, media, digest

    def blob(self, ep: Endpoint, repository: str, digest: str, dest: Path) -> int:
        """Fetch blob ``digest`` into ``dest`` (written beside and renamed once its digest checks); its size."""
        partial = dest.with_name(f"{dest.name}.{threading.get_ident()}.partial")  # pulls of other images may share it
        h, size = hashlib.sha256(), 0
        with self._open(ep, f"{ep.api}/{repository}/blobs/{digest}") as r, open(partial, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                f.write(chunk)
        if f"sha256:{h.hexdigest()}" != digest:
            partial.unlink()
            raise PullError("Unknown", f"blob {digest} of {repository}: content has digest sha256:{h.hexdigest()}")
        partial.rename(dest)
        return size
