"""The mount plan of a container: parents first, hidden sources bound by descriptor, hidden paths kept visible."""

from __future__ import annotations

import pytest

from hack.testbed.runtime.mounts import FIRST_FD, Mount, mount_script

REPO = "/tmp/fs-clone"  # a checkout under /tmp, as in issue 12
TOKEN = f"{REPO}/.run/e2e/pods/uid/volumes/kube-api-access"
EMPTY = f"{REPO}/.run/e2e/pods/uid/volumes/tmp"
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def fd(n: int) -> str:
    return f"/proc/self/fd/{FIRST_FD + n}"


CASES = [
    ("no volumes", [], [], []),
    (
        "a volume outside every other mount is bound by its path",
        [Mount("/data/models", "/models", read_only=True)],
        [],
        ["mkdir -p /models", "mount --no-canonicalize --bind /data/models /models", "mount -o remount,bind,ro /models"],
    ),
    (
        "the operator pod of a checkout under /tmp: token held before /tmp is mounted, the checkout bound again",
        [Mount(EMPTY, "/tmp"), Mount(TOKEN, SA, read_only=True)],
        [REPO],
        [
            f"exec {FIRST_FD}<{TOKEN}",
            f"exec {FIRST_FD + 1}<{REPO}",
            "mkdir -p /tmp",
            f"mount --no-canonicalize --bind {EMPTY} /tmp",
            f"mkdir -p {REPO} && mount --no-canonicalize --bind {fd(1)} {REPO}",
            f"mkdir -p {SA}",
            f"mount --no-canonicalize --bind {fd(0)} {SA}",
            f"mount -o remount,bind,ro {SA}",
            f"exec {FIRST_FD}<&-",
            f"exec {FIRST_FD + 1}<&-",
        ],
    ),
    (
        "parents before children, whatever the pod's order",
        [Mount("/src/cache", "/work/cache"), Mount("/src/work", "/work")],
        [],
        [
            "mkdir -p /work",
            "mount --no-canonicalize --bind /src/work /work",
            "mkdir -p /work/cache",
            "mount --no-canonicalize --bind /src/cache /work/cache",
        ],
    ),
    (
        "read-only remounts come last, so that mount points below them can be made",
        [Mount("/src/etc", "/etc/app", read_only=True), Mount("/src/extra", "/etc/app/extra")],
        [],
        [
            "mkdir -p /etc/app",
            "mount --no-canonicalize --bind /src/etc /etc/app",
            "mkdir -p /etc/app/extra",
            "mount --no-canonicalize --bind /src/extra /etc/app/extra",
            "mount -o remount,bind,ro /etc/app",
        ],
    ),
    (
        "a file is mounted on a file",
        [Mount("/src/config.yaml", "/etc/app/config.yaml", is_dir=False)],
        [],
        [
            "mkdir -p /etc/app && touch /etc/app/config.yaml",
            "mount --no-canonicalize --bind /src/config.yaml /etc/app/config.yaml",
        ],
    ),
    (
        "a kept path no mount hides needs nothing",
        [Mount("/src/data", "/data")],
        ["/root/.cache/foresail/tools", REPO],
        ["mkdir -p /data", "mount --no-canonicalize --bind /src/data /data"],
    ),
    (
        "a mount on the kept path itself is the pod's choice",
        [Mount("/src/x", REPO)],
        [REPO],
        [f"mkdir -p {REPO}", f"mount --no-canonicalize --bind /src/x {REPO}"],
    ),
    (
        "paths with spaces are quoted",
        [Mount("/src/my dir", "/my mount")],
        [],
        ["mkdir -p '/my mount'", "mount --no-canonicalize --bind '/src/my dir' '/my mount'"],
    ),
]


@pytest.mark.parametrize(("name", "mounts", "keep", "expected"), CASES, ids=[c[0] for c in CASES])
def test_mount_script(name: str, mounts: list[Mount], keep: list[str], expected: list[str]) -> None:
    assert mount_script(mounts, keep) == expected, name


def test_a_prefix_of_a_name_is_not_a_parent() -> None:
    # /tmpfoo does not lie below /tmp: nothing to hold
    assert not [line for line in mount_script([Mount("/tmpfoo/x", "/tmp")], ["/tmpdir"]) if line.startswith("exec")]
