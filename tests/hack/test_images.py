"""The image builder's deterministic parts: layers, OCI documents and archives, SBOMs, the wheel's server files,
lock files, and that the image definitions agree with the chart."""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from hack.base.paths import REPO
from hack.images.layer import write_layer
from hack.images.oci import (
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST_TYPE,
    Blob,
    canonical,
    image_config,
    image_manifest,
    write_archive,
    write_layout,
)
from hack.images.sbom import cyclonedx, purl_deb
from hack.images.spec import image_spec, read_pins
from hack.images.tritonserver import server_path
from hack.testbed.runtime.images import FORESAIL_IMAGE

EPOCH = 1_700_000_000


def _tree(root: Path, order: list[str], mtime: float) -> None:
    for name in order:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content of {name}")
        os.utime(p, (mtime, mtime))
    os.link(root / "b/one", root / "b/hard")
    (root / "link").symlink_to("b/one")


def test_a_layer_depends_on_the_tree_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b_"
    _tree(a, ["b/one", "a", "c/d/e"], mtime=1)
    time.sleep(0.01)
    _tree(b, ["c/d/e", "a", "b/one"], mtime=time.time())
    da, db = write_layer(a, tmp_path / "a.tgz", EPOCH), write_layer(b, tmp_path / "b.tgz", EPOCH)
    assert da == db
    assert da.digest == f"sha256:{hashlib.sha256((tmp_path / 'a.tgz').read_bytes()).hexdigest()}"
    with tarfile.open(tmp_path / "a.tgz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {m.mtime for m in members} == {EPOCH} and {m.uname for m in members} == {""}
    hard = next(m for m in members if m.name in ("b/hard", "b/one") and m.islnk())
    assert hard.linkname in ("b/hard", "b/one")
    assert next(m for m in members if m.name == "link").linkname == "b/one"
    assert write_layer(a, tmp_path / "c.tgz", EPOCH + 1).digest != da.digest, "the epoch stamps every entry"


def test_layout_and_archive_are_deterministic(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t/f").write_text("x")
    d = write_layer(tmp_path / "t", tmp_path / "l.tgz", EPOCH)
    layer = Blob(LAYER_TYPE, d.digest, d.size, path=tmp_path / "l.tgz")
    config = Blob.of(CONFIG_TYPE, canonical(image_config({"User": "1"}, [d.diff_id], ["test"], EPOCH)))
    manifest = Blob.of(MANIFEST_TYPE, canonical(image_manifest(config, [layer], {"org.opencontainers.image.version": "1"})))
    digests = []
    for n in ("one", "two"):
        write_layout(tmp_path / n, manifest, [config, layer], "1")
        write_archive(tmp_path / n, tmp_path / f"{n}.tar", EPOCH)
        digests.append(hashlib.sha256((tmp_path / f"{n}.tar").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    blobs = sorted(p.name for p in (tmp_path / "one/blobs/sha256").iterdir())
    assert blobs == sorted(b.digest.split(":")[1] for b in (manifest, config, layer))


def test_sbom_names_every_package_with_its_hash() -> None:
    debs = [{"name": "libc6", "version": "2.36-9+deb12u9", "arch": "amd64", "sha256": "1" * 64}]
    wheels = [{"name": "numpy", "version": "1.26.4", "sha256": "2" * 64, "license": "BSD-3-Clause"}]
    doc = cyclonedx("ghcr.io/foresail/foresail", "0.1.0", "sha256:" + "3" * 64, debs, wheels, EPOCH)
    assert doc == cyclonedx("ghcr.io/foresail/foresail", "0.1.0", "sha256:" + "3" * 64, debs, wheels, EPOCH)
    assert doc["bomFormat"] == "CycloneDX" and doc["metadata"]["component"]["hashes"][0]["content"] == "3" * 64
    assert [c["purl"] for c in doc["components"]] == [purl_deb("libc6", "2.36-9+deb12u9", "amd64"), "pkg:pypi/numpy@1.26.4"]
    assert "%2B" in doc["components"][0]["purl"], "versions are percent-encoded in package URLs"
    assert doc["components"][1]["licenses"] == [{"expression": "BSD-3-Clause"}]


@pytest.mark.parametrize(
    ("member", "path"),
    [
        ("pytriton/tritonserver/bin/tritonserver", "opt/tritonserver/bin/tritonserver"),
        ("pytriton/tritonserver/backends/python/libtriton_python.so", "opt/tritonserver/backends/python/libtriton_python.so"),
        ("pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub", "opt/tritonserver/backends/python/triton_python_backend_stub"),
        ("pytriton/tritonserver/python_backend_stubs/3.12/triton_python_backend_stub", None),
        ("nvidia_pytriton.libs/libtritonserver-717102f0.so", "opt/tritonserver/lib/libtritonserver-717102f0.so"),
        ("nvidia_pytriton.libs/libpython3-419a3a08.13.so.1.0", None),
        ("nvidia_pytriton.libs/", None),
        ("pytriton/client/client.py", None),
    ],
)
def test_what_of_the_wheel_goes_into_the_triton_image(member: str, path: str | None) -> None:
    assert server_path(member) == path


def test_lock_lines_must_be_pinned_with_hashes(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pins\nnumpy==1.26.4 --hash=sha256:" + "a" * 64 + "\n")
    assert [p.line() for p in read_pins(lock)] == ["numpy==1.26.4 --hash=sha256:" + "a" * 64]
    lock.write_text("numpy>=1\n")
    with pytest.raises(SystemExit, match=r"requirements.lock:1: expected 'name==version --hash=sha256:HEX'"):
        read_pins(lock)


def test_the_operator_image_is_the_charts() -> None:
    spec = image_spec("foresail")
    chart = yaml.safe_load((REPO / "charts/foresail/Chart.yaml").read_text())
    values = yaml.safe_load((REPO / "charts/foresail/values.yaml").read_text())
    assert spec.repository == values["image"]["repository"] == FORESAIL_IMAGE
    assert spec.tag == chart["appVersion"] == spec.config["Labels"]["org.opencontainers.image.version"]
    assert spec.config["User"] == "65532:65532", "the chart's runAsUser"
    assert [read_pins(spec.requirements), read_pins(image_spec("tritonserver").requirements)], "both images are locked"
