"""The pure parts of the tool builder: how wrapper modules map replaced modules to proxy versions."""

from __future__ import annotations

import pytest

from hack import tools

K8S_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tgithub.com/some/fork => github.com/other/fork v1.2.3
)
"""

ETCD_GOMOD = """module go.etcd.io/etcd/server/v3

require (
\tgo.etcd.io/etcd/api/v3 v3.5.35
\tgo.etcd.io/etcd/client/v2 v2.305.35 // indirect
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v2 => ../client/v2
\tgo.etcd.io/etcd/tests/v3 => ../tests
)
"""


@pytest.mark.parametrize(
    ("name", "gomod", "expected"),
    [
        (
            "kubernetes staging modules map to v0.Y.Z",
            K8S_GOMOD,
            {"k8s.io/api": "k8s.io/api v0.36.3", "k8s.io/apimachinery": "k8s.io/apimachinery v0.36.3"},
        ),
        ("no staging block", "module x\n", {}),
    ],
)
def test_staging_replaces(name: str, gomod: str, expected: dict[str, str]) -> None:
    assert tools._staging_replaces(gomod, "v0.36.3") == expected, name


def test_local_replaces_use_required_versions_and_skip_unrequired() -> None:
    assert tools._local_replaces(ETCD_GOMOD) == {
        "go.etcd.io/etcd/api/v3": "go.etcd.io/etcd/api/v3 v3.5.35",
        "go.etcd.io/etcd/client/v2": "go.etcd.io/etcd/client/v2 v2.305.35",
    }


def test_tool_dirs_are_keyed_by_version() -> None:
    for name, tool in tools.TOOLS_BY_NAME.items():
        assert tool.dir.parent == tools.TOOLS
        assert tool.dir.name.startswith(f"{name}-")
        assert "/" not in tool.dir.name
        assert "+" not in tool.dir.name
