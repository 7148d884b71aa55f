"""AWS Signature Version 4 (pure: standard library, the time passed in).

https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html. ``sign`` returns the headers to
add to a request (``Authorization``, ``x-amz-date`` and, for S3, ``x-amz-content-sha256``). S3 differs from
the other services in one point: its object keys are URI-encoded once, not twice (``double_encode``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote, urlsplit

__all__ = ["EMPTY_SHA256", "Credentials", "canonical_request", "sign", "signing_key", "string_to_sign"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str = ""


def _uri_encode(s: str, safe: str = "") -> str:
    return quote(s, safe="-_.~" + safe)


def _canonical_path(path: str, double_encode: bool) -> str:
    if not path:
        return "/"
    if double_encode:  # every service but S3: the path as sent (already encoded) is encoded once more
        return _uri_encode(path, safe="/")
    return _uri_encode(unquote(path), safe="/")


def _canonical_query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(unquote(k.replace("+", " "))), _uri_encode(unquote(v.replace("+", " ")))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(
    method: str, url: str, headers: Mapping[str, str], payload_sha256: str, double_encode: bool = True
) -> tuple[str, str]:
    """The canonical request and its signed headers' list (every header given is signed)."""
    parts = urlsplit(url)
    canon = {k.lower().strip(): " ".join(str(v).split()) for k, v in headers.items()}
    names = sorted(canon)
    signed = ";".join(names)
    lines = [
        method.upper(),
        _canonical_path(parts.path, double_encode),
        _canonical_query(parts.query),
        "".join(f"{n}:{canon[n]}\n" for n in names),
        signed,
        payload_sha256,
    ]
    return "\n".join(lines), signed


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    creds: Credentials,
    region: str,
    service: str,
    now: datetime,
    payload_sha256: str = EMPTY_SHA256,
    content_sha256_header: bool = True,
) -> dict[str, str]:
    """The headers to add: ``x-amz-date``, ``x-amz-content-sha256`` (S3; ``content_sha256_header``),
    ``x-amz-security-token`` with a session token, and ``Authorization``. ``headers`` must hold ``host``."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    add = {"x-amz-date": amz_date}
    if content_sha256_header:
        add["x-amz-content-sha256"] = payload_sha256
    if creds.session_token:
        add["x-amz-security-token"] = creds.session_token
    all_headers = {**{k.lower(): v for k, v in headers.items()}, **add}
    canonical, signed = canonical_request(method, url, all_headers, payload_sha256, double_encode=service != "s3")
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = string_to_sign(amz_date, scope, canonical)
    signature = hmac.new(signing_key(creds.secret_key, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    add["Authorization"] = f"{ALGORITHM} Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return add
