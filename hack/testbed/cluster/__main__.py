"""``hack/cluster`` (``python -m hack.testbed.cluster``): up, down, status, kubectl, exec."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from hack.testbed import cluster
from hack.testbed.cluster.cluster import Cluster
from hack.testbed.cluster.nodes import DEFAULT_GPU_PRODUCT


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--name", default=os.environ.get("FORESAIL_CLUSTER", "foresail"), help="cluster name (default: foresail)")
    return parser


def passthrough(argv: list[str]) -> int | None:
    """``kubectl ARGS`` and ``exec [--] CMD`` pass everything after them through untouched."""
    for word in ("kubectl", "exec"):
        if word not in argv:
            continue
        i = argv.index(word)
        head, rest = argv[:i], argv[i + 1 :]
        if word == "exec" and rest[:1] == ["--"]:
            rest = rest[1:]
        c = Cluster(_common(argparse.ArgumentParser(prog="hack/cluster")).parse_args(head).name)
        if c.state is None:
            raise SystemExit(f"hack/cluster: cluster {c.name!r} is not up (run: hack/cluster up)")
        return subprocess.call(c.kube.kubectl_cmd(*rest) if word == "kubectl" else c.exec_cmd(rest))
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rc = passthrough(argv)
    if rc is not None:
        return rc
    parser = _common(
        argparse.ArgumentParser(
            prog="hack/cluster", description=cluster.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the cluster")
    p_up.add_argument("--nodes", type=int, default=int(os.environ.get("FORESAIL_NODES", 4)))
    p_up.add_argument("--gpus-per-node", type=int, default=int(os.environ.get("FORESAIL_GPUS_PER_NODE", 8)))
    p_up.add_argument(
        "--gpu-product",
        default=os.environ.get("FORESAIL_GPU_PRODUCT", DEFAULT_GPU_PRODUCT),
        help="comma-separated; cycled over nodes",
    )
    sub.add_parser("down", help="stop what up started and remove its data")
    sub.add_parser("status", help="show components and nodes")
    sub.add_parser("kubectl", help="run the pinned kubectl against the cluster")
    sub.add_parser("exec", help="run a command in the cluster network with KUBECONFIG set")
    args = parser.parse_args(argv)

    if args.cmd == "up":
        if args.nodes < 1 or args.gpus_per_node < 0:
            raise SystemExit("hack/cluster: --nodes must be >= 1 and --gpus-per-node >= 0")
        c = Cluster(args.name, args.nodes, args.gpus_per_node, [p for p in args.gpu_product.split(",") if p])
        c.up()
        print(f"export KUBECONFIG={c.kubeconfig}")
        return 0
    c = Cluster(args.name)
    if args.cmd == "down":
        c.down()
        return 0
    st = c.status()
    nodes = st.pop("nodes", "")
    print(json.dumps(st, indent=2))
    print(nodes, end="")
    return 0 if st["up"] else 1


if __name__ == "__main__":
    sys.exit(main())
