"""AWS Signature Version 4 against AWS's published vectors: the SigV4 test suite (get-vanilla,
get-vanilla-query-order-key-case; credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z) and the S3 API reference's
header-based examples (GET Object with a Range, GET Bucket listing; 2013-05-24)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foresail.clients.sigv4 import EMPTY_SHA256, Credentials, canonical_request, sign

SUITE = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
S3 = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_AT = datetime(2013, 5, 24, tzinfo=UTC)

CASES = [
    (
        "suite get-vanilla",
        SUITE, SUITE_AT, "service", "https://example.amazonaws.com/", {}, False,
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "suite get-vanilla-query-order-key-case",
        SUITE, SUITE_AT, "service", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}, False,
        "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "S3 GET Object with a Range",
        S3, S3_AT, "s3", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"}, True,
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
    (
        "S3 GET Bucket (list objects)",
        S3, S3_AT, "s3", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {}, True,
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("creds", "at", "service", "url", "headers", "content_header", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_published_vectors(
    creds: Credentials, at: datetime, service: str, url: str, headers: dict[str, str], content_header: bool, want: str
) -> None:
    host = url.split("/")[2]
    got = sign("GET", url, {"Host": host, **headers}, creds, "us-east-1", service, at, EMPTY_SHA256, content_header)
    scope = f"{at:%Y%m%d}/us-east-1/{service}/aws4_request"
    assert got["Authorization"] == f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, {want}"
    assert got["x-amz-date"] == at.strftime("%Y%m%dT%H%M%SZ")


def test_s3_keys_are_encoded_once() -> None:
    """S3 signs the key as sent (encoded once); other services encode the encoded path again."""
    url = "https://b.s3.amazonaws.com/models/a%20b/1/model.py"
    s3, _ = canonical_request("GET", url, {"host": "b"}, EMPTY_SHA256, double_encode=False)
    other, _ = canonical_request("GET", url, {"host": "b"}, EMPTY_SHA256, double_encode=True)
    assert s3.splitlines()[1] == "/models/a%20b/1/model.py"
    assert other.splitlines()[1] == "/models/a%2520b/1/model.py"


def test_session_token_is_signed() -> None:
    got = sign("GET", "https://b/x", {"host": "b"}, Credentials("k", "s", "tok"), "us-east-1", "s3", S3_AT)
    assert got["x-amz-security-token"] == "tok"
    assert "x-amz-security-token" in got["Authorization"]
