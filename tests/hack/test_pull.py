"""Image pulls: references, mirror configuration, pull secrets, and the distribution API against a small
in-process registry (manifests, blobs, Basic authentication, the registry's own error messages)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hack.testbed.cluster.registry import hosts_toml
from hack.testbed.runtime.launch import pull_policy
from hack.testbed.runtime.pull import PullError, Reference, Registry, credentials, endpoints, parse_reference

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("nginx", Reference("docker.io", "library/nginx", "latest", None)),
        ("nginx:1.27", Reference("docker.io", "library/nginx", "1.27", None)),
        ("team/app", Reference("docker.io", "team/app", "latest", None)),
        ("nvcr.io/nvidia/tritonserver:24.08-py3", Reference("nvcr.io", "nvidia/tritonserver", "24.08-py3", None)),
        (f"ghcr.io/foresail/foresail:0.1.0@{SHA}", Reference("ghcr.io", "foresail/foresail", "0.1.0", SHA)),
        (f"ghcr.io/foresail/foresail@{SHA}", Reference("ghcr.io", "foresail/foresail", None, SHA)),
        ("localhost:5000/x:y", Reference("localhost:5000", "x", "y", None)),
    ],
)
def test_references_are_normalised(image: str, ref: Reference) -> None:
    assert parse_reference(image) == ref


@pytest.mark.parametrize(("image", "why"), [("Nginx", "lowercase"), ("x@sha256:12", "digest"), ("x:-bad", "tag")])
def test_bad_references_are_refused(image: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_reference(image)


def test_the_mirror_comes_first_then_the_registry(tmp_path: Path) -> None:
    (tmp_path / "ghcr.io").mkdir()
    (tmp_path / "ghcr.io/hosts.toml").write_text(hosts_toml("ghcr.io", "10.1.0.2:5000"))
    eps = endpoints(parse_reference("ghcr.io/foresail/foresail:0.1.0"), tmp_path)
    assert [(e.api, e.host, sorted(e.capabilities)) for e in eps] == [
        ("http://10.1.0.2:5000/v2/ghcr.io", "10.1.0.2:5000", ["pull", "resolve"]),
        ("https://ghcr.io/v2", "ghcr.io", ["pull", "push", "resolve"]),
    ]
    assert [e.api for e in endpoints(parse_reference("nginx"), tmp_path)] == ["https://registry-1.docker.io/v2"]


def _dockerconfig(auths: dict[str, Any]) -> dict[str, str]:
    return {".dockerconfigjson": base64.b64encode(json.dumps({"auths": auths}).encode()).decode()}


@pytest.mark.parametrize(
    ("name", "secrets", "host", "want"),
    [
        ("auth field", [_dockerconfig({"nvcr.io": {"auth": base64.b64encode(b"$oauthtoken:k3y").decode()}})], "nvcr.io", ("$oauthtoken", "k3y")),
        ("username and password, URL key", [_dockerconfig({"https://ghcr.io/v1/": {"username": "u", "password": "p"}})], "ghcr.io", ("u", "p")),
        ("another host", [_dockerconfig({"ghcr.io": {"username": "u", "password": "p"}})], "nvcr.io", None),
        ("not a docker config", [{"token": "x"}], "ghcr.io", None),
    ],
)
def test_credentials_from_image_pull_secrets(name: str, secrets: list[dict[str, str]], host: str, want: tuple[str, str] | None) -> None:
    assert credentials(secrets, host) == want, name


@pytest.mark.parametrize(
    ("name", "container", "policy"),
    [
        ("set", {"image": "x:1", "imagePullPolicy": "Never"}, "Never"),
        ("a tag", {"image": "x:1"}, "IfNotPresent"),
        ("latest", {"image": "x:latest"}, "Always"),
        ("no tag", {"image": "x"}, "Always"),
        ("a digest", {"image": f"x@{SHA}"}, "IfNotPresent"),
        ("a registry port, no tag", {"image": "localhost:5000/x"}, "Always"),
    ],
)
def test_pull_policy_defaults_as_the_api_does(name: str, container: dict[str, Any], policy: str) -> None:
    assert pull_policy(container) == policy, name


class FakeRegistry:
    """One image ``team/app:1`` behind Basic authentication (user ``u``, password ``p``)."""

    def __init__(self) -> None:
        self.layer = b"layer bytes"
        self.config = json.dumps({"config": {"User": "1000"}}).encode()
        d = {c: f"sha256:{hashlib.sha256(c).hexdigest()}" for c in (self.layer, self.config)}
        self.blobs = {d[self.layer]: self.layer, d[self.config]: self.config}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": d[self.config], "size": len(self.config)}, "layers": [{"digest": d[self.layer], "size": len(self.layer)}],
        }).encode()  # fmt: skip
        reg = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:p").decode():
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                                      {"WWW-Authenticate": 'Basic realm="test"'})  # fmt: skip
                if self.path == "/v2/team/app/manifests/1":
                    return self._send(200, reg.manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                blob = reg.blobs.get(self.path.rsplit("/", 1)[-1]) if "/blobs/" in self.path else None
                if blob is not None:
                    return self._send(200, blob, {})
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', {})

            def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    r = FakeRegistry()
    yield r
    r.http.shutdown()


def test_pull_with_credentials(registry: FakeRegistry, tmp_path: Path) -> None:
    (ep,) = endpoints(Reference(registry.host, "team/app", "1", None), None)
    ep = type(ep)(ep.api.replace("https://", "http://"), ep.host, ep.capabilities)
    reg = Registry(lambda host: ("u", "p") if host == registry.host else None)
    body, media, digest = reg.manifest(ep, "team/app", "1")
    assert body == registry.manifest and media.endswith("manifest.v1+json")
    assert digest == f"sha256:{hashlib.sha256(registry.manifest).hexdigest()}"
    layer = json.loads(body)["layers"][0]["digest"]
    assert reg.blob(ep, "team/app", layer, tmp_path / "blob") == len(registry.layer)
    assert (tmp_path / "blob").read_bytes() == registry.layer


@pytest.mark.parametrize(
    ("name", "creds", "ref", "code", "message"),
    [
        ("no pull secret", None, "1", "Unauthenticated", "unauthorized: authentication required"),
        ("a tag the registry does not have", ("u", "p"), "2", "NotFound", "manifest unknown: manifest unknown"),
    ],
)
def test_pull_errors_carry_the_registry_message(
    registry: FakeRegistry, name: str, creds: tuple[str, str] | None, ref: str, code: str, message: str
) -> None:
    (ep,) = endpoints(Reference(registry.host, "team/app", ref, None), None)
    ep = type(ep)(ep.api.replace("https://", "http://"), ep.host, ep.capabilities)
    with pytest.raises(PullError) as e:
        Registry(lambda _h: creds).manifest(ep, "team/app", ref)
    assert (e.value.code, message in e.value.message) == (code, True), (name, e.value.message)
