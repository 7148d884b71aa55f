"""The ``foresail`` command line.

``run`` starts the operator; ``version`` prints the version. Further subcommands arrive with the
capabilities they drive (``replay``, ``eval-worker``, ``status``).
"""

from __future__ import annotations

import argparse
import platform

from foresail import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foresail", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version", help="print the version")
    p_run = sub.add_parser("run", help="run the operator")
    p_run.add_argument("--namespace", help="namespace of the leader Lease (default: $POD_NAMESPACE or foresail-system)")
    p_run.add_argument("--health-port", type=int, default=8080, help="liveness endpoint port (/healthz)")
    p_run.add_argument("--no-leader-election", action="store_true", help="act without holding the Lease (a single replica)")
    args = parser.parse_args(argv)
    if args.cmd == "version":
        print(f"foresail {__version__} (python {platform.python_version()})")
        return 0
    if args.cmd == "run":
        from foresail.controllers.operator import run

        return run(args.namespace, args.health_port, not args.no_leader_election)
    return 2
