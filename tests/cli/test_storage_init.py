"""``foresail storage-init`` end to end on this machine: an archive served over HTTP, the termination message."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from foresail.cli import main


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b'name: "m"\n'
        info = tarfile.TarInfo("m/config.pbtxt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "www").mkdir()
    (tmp_path / "www/m.tar.gz").write_bytes(buf.getvalue())
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/m.tar.gz", hashlib.sha256(buf.getvalue()).hexdigest()
    server.shutdown()
    t.join()


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    term = tmp_path / "termination-log"
    rc = main(["storage-init", "--dest", str(tmp_path / "models"), "--termination-log", str(term), *args])
    return rc, term.read_text()


def test_archive_fetched_and_digest_reported(tmp_path: Path, served: tuple[str, str]) -> None:
    url, sha = served
    rc, line = _run(tmp_path, "--uri", url, "--sha256", sha)
    assert rc == 0
    assert line.startswith("digest=sha256:") and line.endswith(" files=1 bytes=10\n")
    assert (tmp_path / "models/m/config.pbtxt").read_bytes() == b'name: "m"\n'


def test_checksum_mismatch_exits_non_zero_with_one_line(tmp_path: Path, served: tuple[str, str]) -> None:
    url, _ = served
    rc, line = _run(tmp_path, "--uri", url, "--sha256", "f" * 64)
    assert rc == 1
    assert line.startswith("ChecksumMismatch: ") and line.count("\n") == 1


def test_missing_archive_and_bad_uri(tmp_path: Path, served: tuple[str, str]) -> None:
    url, _ = served
    assert _run(tmp_path, "--uri", url.replace("m.tar.gz", "nope.tar.gz"))[1].startswith("NotFound: GET ")
    rc, line = _run(tmp_path, "--uri", "ftp://h/m.tar")
    assert (rc, line.split(":")[0]) == (2, "InvalidStorageUri")


def test_hash_reports_the_digest_of_a_repository_in_place(tmp_path: Path) -> None:
    """--hash (a pvc repository): nothing fetched or written into the repository, the same digest line as a
    fetch of the same tree; an unreadable repository is ReadFailed."""
    from foresail.clients.storage import tree_digest

    repo = tmp_path / "claim/models"
    (repo / "m/1").mkdir(parents=True)
    (repo / "m/config.pbtxt").write_bytes(b'name: "m"\n')
    (repo / "m/1/model.py").write_bytes(b"print(1)\n")
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    term = tmp_path / "termination-log"
    assert main(["storage-init", "--hash", str(repo), "--termination-log", str(term)]) == 0
    assert term.read_text() == tree_digest(repo).line() + "\n"
    assert term.read_text().endswith(" files=2 bytes=19\n")
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    assert main(["storage-init", "--hash", str(tmp_path / "absent"), "--termination-log", str(term)]) == 1
    assert term.read_text().startswith("ReadFailed: ") and term.read_text().count("\n") == 1


def test_uri_and_hash_are_exclusive_and_uri_needs_dest(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["storage-init", "--uri", "https://h/m.zip", "--hash", str(tmp_path)])
    term = tmp_path / "termination-log"
    assert main(["storage-init", "--uri", "https://h/m.zip", "--termination-log", str(term)]) == 2
    assert term.read_text() == "InvalidArguments: --uri needs --dest\n"
