"""Authentication and TLS towards Prometheus, from files: the arguments of an ``httpx`` client.

Managed or secured Prometheus setups (Thanos, Mimir, Cortex, Grafana Cloud, Amazon Managed Prometheus
behind a proxy, a Prometheus with a ``--web.config.file``) want some of: a bearer token, basic auth, a
private CA, a client certificate, extra headers such as ``X-Scope-OrgID``. The chart mounts each from a
Secret as a file (``prometheus.auth`` values) and passes only the paths (``FORESAIL_PROMETHEUS_*_FILE``,
``controllers/settings.py``): secrets never sit in the environment, in arguments or in logs.

``client_args(PromAuth)`` gives ``verify``, ``auth`` and ``headers`` for ``httpx.AsyncClient(**args)``:

* ``verify``: an ``ssl.SSLContext`` verifying against the CA bundle (else the system's CAs) and
  presenting the client certificate, when either is set; else ``True``. Verification is never off.
* ``auth``: the bearer token or basic auth, read from its file at each request whose file changed
  (rotated projected tokens keep working), never kept in a repr.
* ``headers``: one per file in the headers directory (file name = header name, content = value; the
  ``..data`` links of a mounted Secret are skipped). With ``headers_prefix`` only the files whose name
  starts with it count, the prefix taken off (an EvalJob's one Secret holds ``header.X-Scope-OrgID``
  beside its ``token``).

A missing or unreadable file is a ``PromAuthError`` naming the file, never a crash in the loop.
"""

from __future__ import annotations

import base64
import os
import re
import ssl
import threading
from collections.abc import Generator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

__all__ = ["FileBasicAuth", "FileTokenAuth", "PromAuth", "PromAuthError", "client_args"]

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class PromAuthError(ValueError):
    """A credential file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class PromAuth:
    """Paths of the mounted credential files; empty: not used."""

    bearer_token_file: str = ""
    basic_auth_username_file: str = ""
    basic_auth_password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    headers_dir: str = ""
    headers_prefix: str = ""  # only files named <prefix><header name> in headers_dir; empty: every file

    @classmethod
    def from_settings(cls, settings: Any) -> PromAuth:
        """From the operator's settings (``prometheus_<field>``; a headers directory of its own, no prefix)."""
        return cls(**{f.name: getattr(settings, f"prometheus_{f.name}") for f in fields(cls) if f.name != "headers_prefix"})


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise PromAuthError(f"{path}: cannot read: {e.strerror}") from None


class _FileCredential:
    """The stripped content of a file, re-read when its modification time or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._value = ""

    def get(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise PromAuthError(f"{self.path}: cannot read: {e.strerror}") from None
        with self._lock:
            if self._stamp != (st.st_mtime, st.st_size):
                value = _read(self.path)
                if not value or "\n" in value or "\r" in value:
                    raise PromAuthError(f"{self.path}: must hold one non-empty line")
                self._value, self._stamp = value, (st.st_mtime, st.st_size)
            return self._value


class FileTokenAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` with the token read from a file."""

    def __init__(self, path: str) -> None:
        self._token = _FileCredential(path)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get()}"
        yield request

    def check(self) -> None:
        self._token.get()

    def __repr__(self) -> str:
        return f"FileTokenAuth({self._token.path!r})"


class FileBasicAuth(httpx.Auth):
    """HTTP basic auth with the user name and password read from files."""

    def __init__(self, username_path: str, password_path: str) -> None:
        self._user, self._password = _FileCredential(username_path), _FileCredential(password_path)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        pair = f"{self._user.get()}:{self._password.get()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        yield request

    def check(self) -> None:
        self._user.get()
        self._password.get()

    def __repr__(self) -> str:
        return f"FileBasicAuth({self._user.path!r}, {self._password.path!r})"


def _headers(directory: str, prefix: str = "") -> dict[str, str]:
    root = Path(directory)
    if not root.is_dir():
        raise PromAuthError(f"{directory}: not a directory")
    out: dict[str, str] = {}
    for f in sorted(root.iterdir()):
        if f.name.startswith(".") or not f.name.startswith(prefix) or not f.is_file():
            continue
        name = f.name[len(prefix) :]
        if not _HEADER_NAME.fullmatch(name):
            raise PromAuthError(f"{f}: {name!r} is not an HTTP header name")
        value = _read(str(f))
        if "\n" in value or "\r" in value:
            raise PromAuthError(f"{f}: a header value must be one line")
        out[name] = value
    return out


def _ssl_context(auth: PromAuth) -> ssl.SSLContext | bool:
    if not auth.ca_file and not auth.cert_file:
        return True
    try:
        ctx = ssl.create_default_context(cafile=auth.ca_file or None)
        if auth.cert_file:
            ctx.load_cert_chain(auth.cert_file, auth.key_file or None)
    except (OSError, ssl.SSLError) as e:
        raise PromAuthError(f"{auth.ca_file or auth.cert_file}: cannot load the CA or client certificate: {e}") from None
    return ctx


def client_args(auth: PromAuth) -> dict[str, Any]:
    """Keyword arguments for ``httpx.AsyncClient``: ``verify``, and ``auth``/``headers`` where configured."""
    if auth.bearer_token_file and auth.basic_auth_username_file:
        raise PromAuthError("set a bearer token or basic auth for Prometheus, not both")
    if bool(auth.cert_file) != bool(auth.key_file):
        raise PromAuthError("a client certificate needs its key (and a key its certificate)")
    args: dict[str, Any] = {"verify": _ssl_context(auth)}
    creds: FileTokenAuth | FileBasicAuth | None = None
    if auth.bearer_token_file:
        creds = FileTokenAuth(auth.bearer_token_file)
    elif auth.basic_auth_username_file:
        creds = FileBasicAuth(auth.basic_auth_username_file, auth.basic_auth_password_file)
    if creds is not None:
        creds.check()  # fail at start, naming the file, not at the first query
        args["auth"] = creds
    if auth.headers_dir:
        args["headers"] = _headers(auth.headers_dir, auth.headers_prefix)
    return args
