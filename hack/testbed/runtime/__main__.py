"""``python -m hack.testbed.runtime --name CLUSTER``: the pod runtime of a cluster that is up (hack/cluster starts it)."""

from __future__ import annotations

import argparse
import signal
import sys

from hack.testbed import runtime
from hack.testbed.runtime.runtime import Runtime
from hack.testbed.state import RunDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hack.testbed.runtime", description=runtime.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True, help="cluster name")
    args = parser.parse_args(argv)
    run = RunDir(args.name)
    state = run.load()
    if state is None:
        raise SystemExit(f"runtime: cluster {args.name!r} has no state in {run.path}")
    rt = Runtime(run, state, run.kube(state))

    def on_term(signum: int, _frame: object) -> None:
        rt.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rt.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
