"""The tool builder: how wrapper modules map replaced modules to proxy versions; its progress (live with rich on a
terminal, the log lines alone elsewhere)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hack import tools, tools_ui

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


# ---------------------------------------------------------------- progress: live with rich on a terminal, plain lines elsewhere


@pytest.mark.parametrize(
    ("isatty", "rich_importable", "term", "expect"),
    [
        pytest.param(True, True, "xterm-256color", "rich", id="terminal, run from the virtualenv"),
        pytest.param(True, False, "xterm-256color", "plain", id="terminal, system python before the virtualenv"),
        pytest.param(False, True, "xterm-256color", "plain", id="pipe or CI log, virtualenv"),
        pytest.param(False, False, None, "plain", id="pipe, system python"),
        pytest.param(True, True, "dumb", "plain", id="dumb terminal"),
    ],
)
def test_ui_mode(isatty: bool, rich_importable: bool, term: str | None, expect: str) -> None:
    assert tools_ui.ui_mode(isatty, rich_importable, term) == expect


@pytest.mark.parametrize(
    ("cmd", "expect"),
    [
        pytest.param(["go", "mod", "download", "-json", "k8s.io/kubernetes@v1.36.3"], "go mod download ... k8s.io/kubernetes@v1.36.3", id="go mod download"),
        pytest.param(
            ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "/c/kwok.partial/bin/kwok", "sigs.k8s.io/kwok/cmd/kwok"],
            "go build ... sigs.k8s.io/kwok/cmd/kwok",
            id="go build names the package",
        ),
        pytest.param(
            ["/v/bin/python3", "-m", "pip", "download", "--no-deps", "-d", "/tmp/x", "nvidia-pytriton==0.7.0"],
            "pip download ... nvidia-pytriton==0.7.0",
            id="pip download names the requirement",
        ),
        pytest.param(["apt-get", "update", "-qq"], "apt-get update", id="options alone are left out"),
        pytest.param(["apt-get", "download", "libb64-0d"], "apt-get download libb64-0d", id="no options"),
        pytest.param(["/usr/bin/dpkg-deb", "-x", "a.deb", "/o/root"], "dpkg-deb ... root", id="files by their names"),
        pytest.param(["go", "mod", "download", "-json", "example.com/" + "x" * 60], "go mod download ... example.com/" + "x" * 23 + "…", id="at most 56 characters"),
        pytest.param([], "", id="empty"),
    ],
)  # fmt: skip
def test_step_label(cmd: list[str], expect: str) -> None:
    assert tools_ui.step_label(cmd) == expect


@pytest.mark.parametrize(
    ("n", "expect"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_534_000, "1.5 MB"),
        (12_345_678_901, "12.3 GB"),
        (5 * 10**13, "50000.0 GB"),
    ],
    ids=["nothing", "bytes", "a kilobyte", "megabytes", "gigabytes", "gigabytes is the largest unit"],
)
def test_human_bytes(n: int, expect: str) -> None:
    assert tools_ui.human_bytes(n) == expect


def test_tree_bytes_counts_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.zip").write_bytes(b"x" * 300)
    (tmp_path / "y.mod").write_bytes(b"y" * 12)
    (tmp_path / "link").symlink_to(tmp_path / "a/x.zip")
    assert tools_ui.tree_bytes(tmp_path) == 312
    assert tools_ui.tree_bytes(tmp_path / "missing") == 0


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fake_tool(name: str, exit_code: int = 0) -> tools.Tool:
    def build(out: Path) -> None:
        """One step that 'downloads' 1,500 bytes into the tool's directory, which the live display counts."""
        code = f"import pathlib, sys; pathlib.Path(sys.argv[1], 'dl').write_bytes(b'x' * 1500); sys.exit({exit_code})"
        tools.run([sys.executable, "-c", code, str(out)], watch=[out])
        (out / "bin").mkdir()

    return tools.Tool(name, "v1", build, ())


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tools.Tool]:
    monkeypatch.setattr(tools, "TOOLS", tmp_path / "tools")
    fakes = {"one": _fake_tool("one"), "two": _fake_tool("two"), "broken": _fake_tool("broken", exit_code=3)}
    monkeypatch.setattr(tools, "TOOLS_BY_NAME", fakes)
    return fakes


LOG_LINE = re.compile(r"^\[tools \d\d:\d\d:\d\d\] \S")


@pytest.mark.parametrize(
    ("isatty", "flags", "live"),
    [
        pytest.param(False, [], False, id="pipe: today's log lines only"),
        pytest.param(True, [], True, id="terminal: live progress too"),
        pytest.param(True, ["--plain"], False, id="terminal with --plain: log lines only"),
    ],
)
def test_ensure_shows_which_tool_and_step(
    isatty: bool, flags: list[str], live: bool, fake_tools: dict[str, tools.Tool], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _Tty() if isatty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.delenv("TERM", raising=False)
    assert tools.main(["ensure", *flags, "one", "two"]) == 0
    assert fake_tools["one"].cached() and fake_tools["two"].cached()
    text = out.getvalue()
    assert f"$ {sys.executable} -c" in text and "one v1: done in" in text and "all tools ready in" in text
    if live:
        assert "tool 1/2: one" in text and "two: step 1: python" in text and "tools 2/2" in text
        assert "1.5 kB downloaded" in text
    else:
        assert all(LOG_LINE.match(line) for line in text.splitlines()), text
        assert "tool 1/2" not in text and "downloaded" not in text
    assert isinstance(tools._ui, tools_ui.PlainUI)  # the live display is closed after the run


def test_a_failed_step_closes_the_live_display_and_names_the_command(
    fake_tools: dict[str, tools.Tool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _Tty())
    with pytest.raises(SystemExit, match=r"command failed \(3\)"):
        tools.main(["ensure", "broken"])
    assert isinstance(tools._ui, tools_ui.PlainUI) and not fake_tools["broken"].cached()


def test_runs_with_the_standard_library_alone(tmp_path: Path) -> None:
    """``make tools`` on a fresh clone runs it with the system python, where rich cannot be imported."""
    done = tmp_path / "tools" / tools.TOOLS_BY_NAME["gateway-api"].dir.name / ".complete"
    done.parent.mkdir(parents=True)
    done.write_text('{"version": "v1.2.1", "seconds": 1.0}')
    code = (
        "import runpy, sys; sys.modules['rich'] = None; sys.argv = ['tools.py', 'ensure', 'gateway-api'];"
        "runpy.run_path('hack/tools.py', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(tools.__file__).parent.parent, env={**os.environ, "FORESAIL_CACHE": str(tmp_path)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "gateway-api v1.2.1: cached at" in proc.stdout and "all tools ready" in proc.stdout


def test_a_second_ensure_waits_for_the_first_build_and_does_not_rebuild(
    fake_tools: dict[str, tools.Tool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes ensuring one tool (make tools beside an e2e run): the second waits on the tool's lock, then
    finds it built; it never removes the first's ``.partial`` directory."""
    import fcntl
    import threading

    tool = fake_tools["one"]
    builds: list[Path] = []

    def build(self: tools.Tool) -> Path:
        builds.append(self.dir)
        return self.dir

    monkeypatch.setattr(tools.Tool, "_build", build)
    tool.dir.parent.mkdir(parents=True)
    with open(tool.dir.with_name(f".{tool.dir.name}.lock"), "w") as held:  # the first process, building
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=tool.ensure)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and builds == []  # waiting, not building
        tool.dir.mkdir()
        (tool.dir / ".complete").write_text("{}")  # the first process finishes
    waiter.join(10)
    assert not waiter.is_alive() and builds == []
    tool.ensure()  # cached: no lock, no build
    assert builds == []
    shutil.rmtree(tool.dir)
    tool.ensure()  # nobody else building: builds at once
    assert builds == [tool.dir]
