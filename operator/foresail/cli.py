"""The ``foresail`` command line.

Subcommands arrive with the capabilities they drive (``run``, ``replay``, ``calibrate``,
``eval-worker``, ``status``); today: ``version``.
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
    args = parser.parse_args(argv)
    if args.cmd == "version":
        print(f"foresail {__version__} (python {platform.python_version()})")
    return 0
