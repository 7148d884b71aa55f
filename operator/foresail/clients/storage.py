"""Fetching a model repository from ``spec.model.repository.storageUri`` into a directory (``foresail
storage-init``, the replicas' init container).

- ``s3://bucket/prefix`` and ``gs://bucket/prefix``: every object under the prefix (ListObjectsV2, then
  GetObject), path-style or virtual-hosted, signed with AWS Signature Version 4 (``clients.sigv4``) when credentials are given.
  The object ``<prefix>/a/b`` lands at ``<dest>/a/b``.
- ``http(s)://.../x.tar|.tar.gz|.tgz|.zip``: one archive, checked against the expected sha256 when given,
  unpacked safely: no absolute paths, no ``..``, no links, devices or other special files.

Every failure is a ``FetchError`` with a reason (``Forbidden``, ``NotFound``, ``ChecksumMismatch``,
``UnsafeArchive``, ``BadArchive``, ``Unreachable``, ``HTTPError``) and a one-line message. The content
digest (``tree_digest``) is the sha256 of the ``sha256sum``-style listing of the files sorted by path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import tarfile
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import httpx

from foresail.clients.sigv4 import EMPTY_SHA256, Credentials, sign
from foresail.render.storage import StorageUri

__all__ = ["FetchError", "FetchResult", "S3Client", "fetch", "safe_extract", "tree_digest"]

CHUNK = 1 << 20


class FetchError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message

    def line(self) -> str:
        return f"{self.reason}: {' '.join(self.message.split())}"[:1000]


@dataclass(frozen=True)
class FetchResult:
    digest: str  # sha256:<hex>
    files: int
    bytes: int

    def line(self) -> str:
        return f"digest={self.digest} files={self.files} bytes={self.bytes}"


def _s3_error(resp: httpx.Response, what: str) -> FetchError:
    code, message = "", ""
    try:
        root = ET.fromstring(resp.content) if resp.content else None
        if root is not None:
            code = root.findtext("Code") or ""
            message = root.findtext("Message") or ""
    except ET.ParseError:
        pass
    detail = f"{resp.status_code} {code or resp.reason_phrase}" + (f" ({message})" if message else "")
    if resp.status_code == 403:
        return FetchError("Forbidden", f"{what}: {detail}: check the credentials (s3.secretName) and the bucket's policy")
    if resp.status_code == 404:
        return FetchError("NotFound", f"{what}: {detail}")
    return FetchError("HTTPError", f"{what}: {detail}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class S3Client:
    """ListObjectsV2 and GetObject against an S3-compatible endpoint, SigV4-signed; the bucket in the path
    (``<endpoint>/<bucket>/<key>``) or, ``virtual``, in the host (``<bucket>.<endpoint host>/<key>``)."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        creds: Credentials | None,
        client: httpx.Client,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        virtual: bool = False,
    ) -> None:
        self.endpoint, self.region, self.creds, self.client, self.now = endpoint.rstrip("/"), region, creds, client, now
        self.virtual = virtual

    def _url(self, bucket: str, key: str = "", query: str = "") -> str:
        """The URL of ``key`` in ``bucket`` (the bucket itself when ``key`` is empty), by addressing style."""
        path = quote(key, safe="/-_.~")
        if self.virtual:
            parts = urlsplit(self.endpoint)
            base = f"{parts.scheme}://{bucket}.{parts.netloc}/{path}"
        else:
            base = f"{self.endpoint}/{quote(bucket)}" + (f"/{path}" if key else "")
        return base + (f"?{query}" if query else "")

    def _get(self, url: str, stream: bool = False) -> httpx.Response:
        host = urlsplit(url).netloc
        headers = {"host": host}
        if self.creds is not None:
            headers.update(sign("GET", url, headers, self.creds, self.region, "s3", self.now(), EMPTY_SHA256))
        req = self.client.build_request("GET", url, headers=headers)
        try:
            return self.client.send(req, stream=stream)
        except httpx.HTTPError as e:
            raise FetchError("Unreachable", f"GET {url}: {type(e).__name__}: {e}") from None

    def list(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``."""
        token = ""
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            url = self._url(bucket, query=urlencode(sorted(q.items()), quote_via=quote))
            resp = self._get(url)
            if resp.status_code != 200:
                raise _s3_error(resp, f"listing s3://{bucket}/{prefix}")
            try:
                root = ET.fromstring(resp.content)
            except ET.ParseError as e:
                raise FetchError("HTTPError", f"listing s3://{bucket}/{prefix}: unreadable answer ({e})") from None
            for el in root:
                if _local(el.tag) == "Contents":
                    fields = {_local(c.tag): c.text or "" for c in el}
                    yield fields.get("Key", ""), int(fields.get("Size", "0") or 0)
            truncated = next((el.text for el in root if _local(el.tag) == "IsTruncated"), "false")
            token = next((el.text or "" for el in root if _local(el.tag) == "NextContinuationToken"), "")
            if truncated != "true" or not token:
                return

    def download(self, bucket: str, key: str, dest: Path) -> int:
        url = self._url(bucket, key)
        resp = self._get(url, stream=True)
        try:
            if resp.status_code != 200:
                resp.read()
                raise _s3_error(resp, f"GET s3://{bucket}/{key}")
            return _write(resp, dest)
        finally:
            resp.close()


def _write(resp: httpx.Response, dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "wb") as f:
        for chunk in resp.iter_bytes(CHUNK):
            f.write(chunk)
            n += len(chunk)
    tmp.replace(dest)
    return n


def _relative_key(key: str, prefix: str) -> str | None:
    """Where object ``key`` goes below the destination (None: not below the prefix as a path, or a directory
    marker). A key that would leave the destination is an error."""
    base = prefix.rstrip("/")
    if base and not (key == base or key.startswith(base + "/")):
        return None  # s3://b/models matches models-old/x too: only whole path segments count
    rel = key[len(base) :].lstrip("/") if base else key
    if not rel or rel.endswith("/"):
        return None
    norm = posixpath.normpath(rel)
    if norm.startswith("../") or norm == ".." or posixpath.isabs(norm) or "\\" in rel:
        raise FetchError("UnsafeObjectKey", f"object key {key!r} would be written outside the model directory")
    return norm


def fetch_bucket(uri: StorageUri, dest: Path, s3: S3Client) -> None:
    listed = [(k, size) for k, size in s3.list(uri.bucket, uri.prefix)]
    wanted = [(k, rel) for k, _ in listed if (rel := _relative_key(k, uri.prefix)) is not None]
    if not wanted:
        where = f"{uri.scheme}://{uri.bucket}/{uri.prefix}"
        raise FetchError("NotFound", f"no objects under {where}" + (f" ({len(listed)} keys listed, none below it as a path)" if listed else ""))
    for key, rel in wanted:
        s3.download(uri.bucket, key, dest / rel)


def _safe_member(name: str) -> str:
    norm = posixpath.normpath(name.replace("\\", "/"))
    if posixpath.isabs(name) or norm == ".." or norm.startswith("../") or name.startswith("/"):
        raise FetchError("UnsafeArchive", f"archive member {name!r} would be written outside the model directory")
    return norm


def safe_extract(archive: Path, kind: str, dest: Path) -> None:
    """Unpack ``archive`` (tar, tar.gz or zip) into ``dest``: regular files and directories only, each inside
    ``dest`` (a member with an absolute path, ``..``, a link or a special file fails the whole fetch)."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _safe_member(info.filename)
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode not in (0, 0o100000, 0o040000):
                        raise FetchError("UnsafeArchive", f"archive member {info.filename!r} is not a regular file or directory")
                    if info.is_dir() or rel == ".":
                        (dest / rel).mkdir(parents=True, exist_ok=True)
                        continue
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest / rel, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
            return
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                rel = _safe_member(member.name)
                if member.isdir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise FetchError("UnsafeArchive", f"archive member {member.name!r} is a link or special file")
                data = tf.extractfile(member)
                assert data is not None
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                with data, open(dest / rel, "wb") as out:
                    shutil.copyfileobj(data, out, CHUNK)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise FetchError("BadArchive", f"cannot unpack the {kind} archive: {e}") from None


def fetch_archive(uri: StorageUri, dest: Path, client: httpx.Client, sha256: str | None) -> None:
    tmp = dest / ".foresail-archive.part"
    h = hashlib.sha256()
    try:
        with client.stream("GET", uri.url) as resp:
            if resp.status_code != 200:
                reason = {403: "Forbidden", 401: "Forbidden", 404: "NotFound"}.get(resp.status_code, "HTTPError")
                raise FetchError(reason, f"GET {uri.url}: {resp.status_code} {resp.reason_phrase}")
            with open(tmp, "wb") as f:
                for chunk in resp.iter_bytes(CHUNK):
                    h.update(chunk)
                    f.write(chunk)
    except httpx.HTTPError as e:
        raise FetchError("Unreachable", f"GET {uri.url}: {type(e).__name__}: {e}") from None
    try:
        if sha256 is not None and h.hexdigest() != sha256:
            raise FetchError("ChecksumMismatch", f"{uri.url}: sha256 {h.hexdigest()}, expected {sha256} (spec.model.repository.sha256)")
        safe_extract(tmp, uri.archive, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _raise(e: OSError) -> None:
    raise e


def tree_digest(root: Path) -> FetchResult:
    """sha256 of ``'<file sha256>  <relative path>\\n'`` lines of every regular file, sorted by path (what
    ``find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum`` prints), each file read
    once, in chunks. Symbolic links are never followed (a link cannot pull in files from outside ``root``, nor
    loop): each, to a file or a directory, is the line ``'symlink:<sha256 of its target>  <relative path>'``,
    so that retargeting a link changes the digest (a fetched tree has none: ``safe_extract`` refuses links).
    Other special files (FIFOs, sockets, devices) are left out. An unreadable directory or file raises
    OSError. ``files`` and ``bytes`` count the regular files."""
    entries: list[tuple[str, Path, bool]] = []  # (relative path, path, is a symlink)
    for dirpath, dirs, names in os.walk(root, onerror=_raise):
        here = Path(dirpath)
        # os.walk lists a link to a directory among dirs and does not descend into it
        entries += [((here / n).relative_to(root).as_posix(), here / n, True) for n in dirs if (here / n).is_symlink()]
        for n in names:
            p = here / n
            if p.is_symlink() or p.is_file():
                entries.append((p.relative_to(root).as_posix(), p, p.is_symlink()))
    listing = hashlib.sha256()
    total = files = 0
    for rel, p, link in sorted(entries, key=lambda t: t[0].encode()):
        if link:
            listing.update(f"symlink:{hashlib.sha256(os.fsencode(os.readlink(p))).hexdigest()}  {rel}\n".encode())
            continue
        h = hashlib.sha256()
        with os.fdopen(os.open(p, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:  # a file swapped for a link since: refused
            while chunk := f.read(CHUNK):
                h.update(chunk)
                total += len(chunk)
        files += 1
        listing.update(f"{h.hexdigest()}  {rel}\n".encode())
    return FetchResult(f"sha256:{listing.hexdigest()}", files, total)


def fetch(
    uri: StorageUri,
    dest: Path,
    *,
    client: httpx.Client,
    endpoint: str = "",
    region: str = "us-east-1",
    creds: Credentials | None = None,
    sha256: str | None = None,
    virtual: bool = False,
) -> FetchResult:
    """Fetch ``uri`` into ``dest`` (emptied first: a restarted init container starts over) and digest it."""
    dest.mkdir(parents=True, exist_ok=True)
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    if uri.is_bucket:
        fetch_bucket(uri, dest, S3Client(endpoint, region, creds, client, virtual=virtual))
    else:
        fetch_archive(uri, dest, client, sha256)
    return tree_digest(dest)
