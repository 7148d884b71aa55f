"""Prometheus credentials from mounted files: headers sent (httpx.MockTransport) and TLS against a real local
HTTPS server that requires a client certificate (certificates made by the testbed's openssl PKI)."""

from __future__ import annotations

import http.server
import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from foresail.clients.promauth import PromAuth, PromAuthError, client_args
from foresail.controllers.settings import OperatorSettings
from hack.testbed.cluster.pki import make_pki

TOKEN = "s3cr3t-token-value"


def _seen(args: dict[str, object]) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"status": "success"})

    kwargs = {k: v for k, v in args.items() if k != "verify"}
    with httpx.Client(transport=httpx.MockTransport(handler), **kwargs) as c:  # type: ignore[arg-type]
        c.get("http://prometheus/api/v1/query")
    return requests


def _secret_dir(root: Path, files: dict[str, str]) -> Path:
    """The layout of a mounted Secret: the keys are links into ..data, a link to a timestamped directory."""
    stamp = root / "..2026_01_01_00_00_00.1"
    stamp.mkdir(parents=True)
    for k, v in files.items():
        (stamp / k).write_text(v + "\n")
        (root / k).symlink_to(Path("..data") / k)
    (root / "..data").symlink_to(stamp.name)
    return root


def test_bearer_token_is_sent_and_rereads_a_rotated_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    args = client_args(PromAuth(bearer_token_file=str(token)))
    assert args["verify"] is True
    assert _seen(args)[0].headers["Authorization"] == f"Bearer {TOKEN}"
    token.write_text("rotated-token-longer\n")
    assert _seen(args)[0].headers["Authorization"] == "Bearer rotated-token-longer"
    assert TOKEN not in repr(args) and "rotated" not in repr(args)


def test_basic_auth_and_headers_from_a_mounted_secret(tmp_path: Path) -> None:
    creds = _secret_dir(tmp_path / "basic", {"username": "foresail", "password": "pa55"})
    headers = _secret_dir(tmp_path / "headers", {"X-Scope-OrgID": "team-a", "X-Api-Key": "k"})
    args = client_args(
        PromAuth(
            basic_auth_username_file=str(creds / "username"),
            basic_auth_password_file=str(creds / "password"),
            headers_dir=str(headers),
        )
    )
    req = _seen(args)[0]
    assert req.headers["Authorization"] == "Basic Zm9yZXNhaWw6cGE1NQ=="  # foresail:pa55
    assert (req.headers["X-Scope-OrgID"], req.headers["X-Api-Key"]) == ("team-a", "k")
    assert "pa55" not in repr(args["auth"])


def test_headers_by_prefix_from_a_secret_with_other_keys(tmp_path: Path) -> None:
    """An EvalJob's one Secret: header.<Name> keys are headers, the token beside them is not."""
    d = _secret_dir(tmp_path / "secret", {"token": TOKEN, "header.X-Scope-OrgID": "team-a", "ca.crt": "x"})
    args = client_args(PromAuth(headers_dir=str(d), headers_prefix="header."))
    assert args["headers"] == {"X-Scope-OrgID": "team-a"}
    (d / "header.").symlink_to(Path("..data") / "token")
    with pytest.raises(PromAuthError, match="'' is not an HTTP header name"):
        client_args(PromAuth(headers_dir=str(d), headers_prefix="header."))


@pytest.mark.parametrize(
    ("name", "auth", "message"),
    [
        ("missing token file", PromAuth(bearer_token_file="/nonexistent/token"), "/nonexistent/token: cannot read"),
        ("token and basic auth", PromAuth(bearer_token_file="/t", basic_auth_username_file="/u"), "not both"),
        ("certificate without key", PromAuth(cert_file="/c"), "needs its key"),
        ("CA file missing", PromAuth(ca_file="/nonexistent/ca.crt"), "/nonexistent/ca.crt: cannot load"),
        ("headers not a directory", PromAuth(headers_dir="/nonexistent"), "/nonexistent: not a directory"),
    ],
)
def test_bad_configuration_names_the_file(name: str, auth: PromAuth, message: str) -> None:
    with pytest.raises(PromAuthError, match=message):
        client_args(auth)


def test_bad_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PromAuthError, match="empty: must hold one non-empty line"):
        client_args(PromAuth(bearer_token_file=str(tmp_path / "empty")))
    hdr = tmp_path / "h"
    hdr.mkdir()
    (hdr / "Bad Name").write_text("x")
    with pytest.raises(PromAuthError, match="is not an HTTP header name"):
        client_args(PromAuth(headers_dir=str(hdr)))


def test_from_settings_takes_every_prometheus_file_setting() -> None:
    env = {
        "FORESAIL_PROMETHEUS_BEARER_TOKEN_FILE": "/etc/foresail/prometheus/token/token",
        "FORESAIL_PROMETHEUS_CA_FILE": "/etc/foresail/prometheus/ca/ca.crt",
        "FORESAIL_PROMETHEUS_CERT_FILE": "/etc/foresail/prometheus/client/tls.crt",
        "FORESAIL_PROMETHEUS_KEY_FILE": "/etc/foresail/prometheus/client/tls.key",
        "FORESAIL_PROMETHEUS_HEADERS_DIR": "/etc/foresail/prometheus/headers",
    }
    auth = PromAuth.from_settings(OperatorSettings.from_env(env))
    assert auth == PromAuth(
        bearer_token_file=env["FORESAIL_PROMETHEUS_BEARER_TOKEN_FILE"],
        ca_file=env["FORESAIL_PROMETHEUS_CA_FILE"],
        cert_file=env["FORESAIL_PROMETHEUS_CERT_FILE"],
        key_file=env["FORESAIL_PROMETHEUS_KEY_FILE"],
        headers_dir=env["FORESAIL_PROMETHEUS_HEADERS_DIR"],
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_pki(d, "promauth", "127.0.0.1")
    return d


@pytest.fixture(scope="module")
def mtls_server(pki: Path) -> Iterator[str]:
    """HTTPS on loopback that requires a client certificate signed by the CA and a bearer token."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            body = b'{"status":"success"}' if ok else b"unauthorized"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    ctx.load_verify_locations(pki / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(url: str, args: dict[str, object]) -> int:
    with httpx.Client(timeout=5, **args) as c:  # type: ignore[arg-type]
        return c.get(url + "/api/v1/query").status_code


def test_tls_with_the_ca_a_client_certificate_and_a_token(pki: Path, mtls_server: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    full = PromAuth(
        bearer_token_file=str(token),
        ca_file=str(pki / "ca.crt"),
        cert_file=str(pki / "prometheus.crt"),
        key_file=str(pki / "prometheus.key"),
    )
    assert isinstance(client_args(full)["verify"], ssl.SSLContext)
    assert _get(mtls_server, client_args(full)) == 200
    # the server's certificate is checked against the CA: no CA, no connection
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(mtls_server, client_args(PromAuth(bearer_token_file=str(token))))
    # no client certificate: the server ends the handshake
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _get(mtls_server, client_args(PromAuth(bearer_token_file=str(token), ca_file=str(pki / "ca.crt"))))
    # no token: the request is refused
    no_token = PromAuth(ca_file=full.ca_file, cert_file=full.cert_file, key_file=full.key_file)
    assert _get(mtls_server, client_args(no_token)) == 401
    assert os.fspath(token) in repr(client_args(full)["auth"]) and TOKEN not in repr(client_args(full))
