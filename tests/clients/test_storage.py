"""storage-init's fetching against httpx.MockTransport: an S3 stand-in (ListObjectsV2 with continuation,
GetObject, 403 and 404 in S3's XML), archives (tar.gz, zip) with and without a sha256, unsafe members, and
the content digest."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import httpx
import pytest

from foresail.clients.sigv4 import Credentials
from foresail.clients.storage import FetchError, fetch, tree_digest
from foresail.render.storage import parse_storage_uri

AT = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
GOOD = Credentials("AKIDFORESAIL", "secret")
MODEL = {
    "models/emulated/config.pbtxt": b'name: "emulated"\nbackend: "python"\n',
    "models/emulated/1/model.py": b"print('hi')\n",
    "models/emulated-old/config.pbtxt": b"not below the prefix as a path\n",
    "other/x": b"x",
}


def _error(status: int, code: str) -> httpx.Response:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{code} here</Message></Error>"
    return httpx.Response(status, content=body.encode())


class FakeS3:
    """S3 for one bucket, path-style or virtual-hosted (``<bucket>.s3.local``); requests must carry GOOD's access key (page size 2 to exercise continuation)."""

    def __init__(self, objects: dict[str, bytes], page: int = 2) -> None:
        self.objects, self.page = objects, page
        self.requests: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        auth = req.headers.get("authorization", "")
        if f"Credential={GOOD.access_key}/" not in auth or not re.search(r"Signature=[0-9a-f]{64}$", auth):
            return _error(403, "InvalidAccessKeyId")
        parts = urlsplit(str(req.url))
        if parts.hostname and parts.hostname.endswith(".s3.local"):  # virtual-hosted: the bucket is in the host
            bucket, key = parts.hostname.removesuffix(".s3.local"), unquote(parts.path).lstrip("/")
        else:
            bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        if bucket != "models":
            return _error(404, "NoSuchBucket")
        if not key:
            q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            assert q["list-type"] == "2"
            keys = sorted(k for k in self.objects if k.startswith(q.get("prefix", "")))
            start = int(q.get("continuation-token", "0") or 0)
            page = keys[start : start + self.page]
            more = start + self.page < len(keys)
            items = "".join(f"<Contents><Key>{escape(k)}</Key><Size>{len(self.objects[k])}</Size></Contents>" for k in page)
            token = f"<NextContinuationToken>{start + self.page}</NextContinuationToken>" if more else ""
            xml = (f'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models</Name>{items}'
                   f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{token}</ListBucketResult>")  # fmt: skip
            return httpx.Response(200, content=xml.encode())
        if key not in self.objects:
            return _error(404, "NoSuchKey")
        return httpx.Response(200, content=self.objects[key])


def _fetch_s3(tmp: Path, uri: str, fake: FakeS3, creds: Credentials | None = GOOD, virtual: bool = False) -> tuple[Path, str]:
    dest = tmp / "out"
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        res = fetch(parse_storage_uri(uri), dest, client=client, endpoint="http://s3.local:8333", creds=creds, virtual=virtual)
    return dest, res.line()


def test_s3_virtual_hosted(tmp_path: Path) -> None:
    """addressingStyle virtual: the bucket in the host, the key alone in the path, the host signed."""
    fake = FakeS3(MODEL)
    dest, line = _fetch_s3(tmp_path, "s3://models/models/emulated", fake, virtual=True)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["1/model.py", "config.pbtxt"]
    assert {r.url.host for r in fake.requests} == {"models.s3.local"}
    assert {r.headers["host"] for r in fake.requests} == {"models.s3.local:8333"}
    assert all("SignedHeaders=host;" in r.headers["authorization"] for r in fake.requests)
    lists = [r for r in fake.requests if "list-type=2" in str(r.url)]
    assert lists and all(r.url.path == "/" for r in lists)
    assert "/models/emulated/1/model.py" in {r.url.path for r in fake.requests}
    assert line == _fetch_s3(tmp_path / "path", "s3://models/models/emulated", FakeS3(MODEL))[1], "the same content, the same digest"


def test_s3_prefix_lands_below_dest(tmp_path: Path) -> None:
    fake = FakeS3(MODEL)
    dest, line = _fetch_s3(tmp_path, "s3://models/models/emulated", fake)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["1/model.py", "config.pbtxt"]
    assert (dest / "1/model.py").read_bytes() == MODEL["models/emulated/1/model.py"]
    assert re.fullmatch(r"digest=sha256:[0-9a-f]{64} files=2 bytes=\d+", line)
    lists = [r for r in fake.requests if "list-type=2" in str(r.url)]
    assert len(lists) == 2  # three keys under the prefix "models/emulated", two a page
    assert all(r.headers["x-amz-content-sha256"] for r in fake.requests)


def test_s3_whole_bucket_and_trailing_slash(tmp_path: Path) -> None:
    dest, _ = _fetch_s3(tmp_path, "s3://models/models/emulated/", FakeS3(MODEL))
    assert (dest / "config.pbtxt").is_file()
    dest2, _ = _fetch_s3(tmp_path / "b", "s3://models", FakeS3(MODEL))
    assert (dest2 / "other/x").is_file()


@pytest.mark.parametrize(
    ("uri", "creds", "reason", "words"),
    [
        ("s3://models/models/emulated", Credentials("WRONG", "x"), "Forbidden", "403 InvalidAccessKeyId"),
        ("s3://models/models/emulated", None, "Forbidden", "check the credentials"),
        ("s3://models/nothing-here", GOOD, "NotFound", "no objects under s3://models/nothing-here"),
        ("s3://missing-bucket/x", GOOD, "NotFound", "404 NoSuchBucket"),
    ],
    ids=["wrong key", "anonymous", "empty prefix", "missing bucket"],
)
def test_s3_failures(tmp_path: Path, uri: str, creds: Credentials | None, reason: str, words: str) -> None:
    with pytest.raises(FetchError) as e:
        _fetch_s3(tmp_path, uri, FakeS3(MODEL), creds)
    assert e.value.reason == reason
    assert words in e.value.line()
    assert "\n" not in e.value.line()


def test_s3_missing_object_after_listing(tmp_path: Path) -> None:
    fake = FakeS3(MODEL)
    real = fake.__call__

    def vanish(req: httpx.Request) -> httpx.Response:  # listed, then deleted before the GET
        return _error(404, "NoSuchKey") if req.url.path.endswith("model.py") else real(req)

    with pytest.raises(FetchError) as e, httpx.Client(transport=httpx.MockTransport(vanish)) as client:
        fetch(parse_storage_uri("s3://models/models/emulated"), tmp_path, client=client, endpoint="http://s", creds=GOOD)
    assert e.value.line().startswith("NotFound: GET s3://models/models/emulated/1/model.py: 404 NoSuchKey")


def _tar_gz(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tf.addfile(info)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fetch_archive(tmp: Path, url: str, body: bytes, sha256: str | None = None, status: int = 200) -> Path:
    dest = tmp / "out"

    def serve(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    with httpx.Client(transport=httpx.MockTransport(serve)) as client:
        fetch(parse_storage_uri(url), dest, client=client, sha256=sha256)
    return dest


TREE = {"emulated/config.pbtxt": b"cfg", "emulated/1/model.py": b"code"}


@pytest.mark.parametrize(("url", "body"), [("https://h/m.tar.gz", _tar_gz(TREE)), ("https://h/m.zip", _zip(TREE))], ids=["tar.gz", "zip"])
def test_archive_with_matching_sha256(tmp_path: Path, url: str, body: bytes) -> None:
    dest = _fetch_archive(tmp_path, url, body, hashlib.sha256(body).hexdigest())
    assert (dest / "emulated/1/model.py").read_bytes() == b"code"
    assert not list(dest.glob(".foresail-archive*"))


def test_archive_checksum_mismatch(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as e:
        _fetch_archive(tmp_path, "https://h/m.tar.gz", _tar_gz(TREE), "0" * 64)
    assert e.value.reason == "ChecksumMismatch"
    assert "expected 0000" in e.value.line()
    assert not (tmp_path / "out/emulated").exists()  # nothing unpacked


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_tar_gz({"../evil": b"x"}), "'../evil' would be written outside"),
        (_tar_gz({"/etc/evil": b"x"}), "'/etc/evil' would be written outside"),
        (_tar_gz({"a/../../evil": b"x"}), "outside"),
        (_tar_gz({}, link=("emulated", "/etc")), "is a link or special file"),
        (_zip({"../evil": b"x"}), "outside"),
        (b"not an archive", "BadArchive"),
    ],
    ids=["dot-dot", "absolute", "climbing", "symlink", "zip dot-dot", "garbage"],
)
def test_unsafe_archives_refused(tmp_path: Path, body: bytes, words: str) -> None:
    url = "https://h/m.zip" if body.startswith(b"PK") else "https://h/m.tar.gz"
    with pytest.raises(FetchError) as e:
        _fetch_archive(tmp_path, url, body)
    assert words in e.value.line()
    assert not (tmp_path / "evil").exists()


def test_archive_http_errors(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as e:
        _fetch_archive(tmp_path, "https://h/m.tar", b"", status=404)
    assert e.value.line() == "NotFound: GET https://h/m.tar: 404 Not Found"


def test_digest_is_sha256sum_of_the_listing(tmp_path: Path) -> None:
    for rel, data in {"b/x": b"1", "a": b"22", "B": b"333"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    got = tree_digest(tmp_path)
    shell = subprocess.run(
        "find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True, cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert got.digest == "sha256:" + shell.stdout.split()[0]
    assert (got.files, got.bytes) == (3, 6)
    (tmp_path / "a").write_bytes(b"23")
    assert tree_digest(tmp_path).digest != got.digest


REPO_TREE = {"m/config.pbtxt": b'name: "m"\n', "m/1/model.py": b"print(1)\n", "m/1/weights.bin": bytes(range(256)) * 8}


def _tree(root: Path, files: dict[str, bytes], order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[rel])
    return root


def _edited(tmp_path: Path, edit: Callable[[Path], None]) -> str:
    root = _tree(tmp_path / "edited", REPO_TREE)
    edit(root)
    return tree_digest(root).digest


def _link(root: Path, rel: str, target: str) -> None:
    (root / rel).symlink_to(target)


@pytest.mark.parametrize(
    ("edit", "same"),
    [
        (lambda r: None, True),
        (lambda r: (r / "m/1/model.py").write_bytes(b"print(2)\n"), False),
        (lambda r: (r / "m/1/model.py").rename(r / "m/1/model2.py"), False),
        (lambda r: (r / "m/1").rename(r / "m/2"), False),
        (lambda r: (r / "m/1/model.py").write_bytes(b"print(1)\n\n"), False),
        (lambda r: (r / "m/extra.txt").write_bytes(b""), False),
        (lambda r: (r / "m/empty-dir").mkdir(), True),
        (lambda r: (r / "m/1/weights.bin").unlink(), False),
        (lambda r: (r / "m/1/model.py").chmod(0o600), True),
        (lambda r: _link(r, "m/latest", "1"), False),
        (lambda r: os.mkfifo(r / "m/fifo"), True),
    ],
    ids=[
        "unchanged",
        "content change",
        "file rename",
        "directory rename",
        "one byte appended",
        "empty file added",
        "empty directory added",
        "file removed",
        "mode change",
        "symlink added",
        "fifo left out",
    ],
)
def test_repository_digest_cases(tmp_path: Path, edit: Callable[[Path], None], same: bool) -> None:
    before = tree_digest(_tree(tmp_path / "orig", REPO_TREE)).digest
    assert (_edited(tmp_path, edit) == before) is same


def test_digest_independent_of_creation_order_and_location(tmp_path: Path) -> None:
    one = tree_digest(_tree(tmp_path / "one", REPO_TREE))
    two = tree_digest(_tree(tmp_path / "elsewhere/two", REPO_TREE, order=sorted(REPO_TREE, reverse=True)))
    assert one == two
    assert (one.files, one.bytes) == (3, len(b'name: "m"\n') + len(b"print(1)\n") + 2048)


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    """A link to a directory outside the repository (or to itself) contributes its target, not the files behind
    it; retargeting it changes the digest; counts are of regular files only."""
    outside = _tree(tmp_path / "outside", {"secret": b"not part of the model"})
    root = _tree(tmp_path / "repo", REPO_TREE)
    _link(root, "m/escape", str(outside))
    _link(root, "m/loop", ".")
    got = tree_digest(root)
    assert (got.files, got.bytes) == (3, tree_digest(_tree(tmp_path / "plain", REPO_TREE)).bytes)
    (outside / "secret").write_bytes(b"changed behind the link")
    assert tree_digest(root) == got
    (root / "m/escape").unlink()
    _link(root, "m/escape", str(tmp_path))
    assert tree_digest(root).digest != got.digest


def test_unreadable_repository_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        tree_digest(tmp_path / "missing")


def test_fetch_empties_dest_first(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/stale").write_text("from a failed attempt")
    dest = _fetch_archive(tmp_path, "https://h/m.zip", _zip(TREE))
    assert not (dest / "stale").exists()
