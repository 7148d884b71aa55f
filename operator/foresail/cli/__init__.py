"""The ``foresail`` command line.

``run`` starts the operator; ``status`` shows one InferenceService's decision, forecast, capacity,
quota, warm-up and conditions; ``calibrate`` measures a Triton model's throughput/latency curve;
``replay`` tests a scaling policy against a trace; ``eval-worker`` runs one shard of an EvalJob (in the
pods of its Indexed Job), ``eval-compare`` its results against its baseline's; ``storage-init`` fetches a
storageUri into the model volume, or digests a pvc repository in place (a replica's init container);
``crds apply`` creates or replaces the CRDs of a directory when compatible (the chart's pre-upgrade hook);
``version`` prints the version.
"""

from __future__ import annotations

import argparse
import platform

from foresail import __version__
from foresail.cli import calibrate, crds, replay, status, storage_init

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foresail", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version", help="print the version")
    p_run = sub.add_parser("run", help="run the operator (settings: FORESAIL_* environment variables)")
    p_run.add_argument("--namespace", help="namespace of the leader Lease (default: $POD_NAMESPACE or foresail-system)")
    p_run.add_argument("--health-port", type=int, default=8080, help="liveness endpoint port (/healthz)")
    p_run.add_argument("--no-leader-election", action="store_true", help="act without holding the Lease (a single replica)")
    status.add_arguments(sub.add_parser("status", help="one InferenceService's autoscaling state in one view"))
    calibrate.add_arguments(sub.add_parser("calibrate", help="a Triton model's throughput/latency curve at concurrency levels"))
    replay.add_arguments(sub.add_parser("replay", help="what-if: a trace through Foresail, baselines and the oracle"))
    storage_init.add_arguments(
        sub.add_parser("storage-init", help="fetch spec.model.repository.storageUri into the model volume, or digest a pvc one (--hash; the replicas' init container)")
    )
    crds.add_arguments(sub.add_parser("crds", help="create or replace the CRDs of a directory when compatible (the chart's pre-upgrade hook)"))
    sub.add_parser(
        "eval-worker",
        help="one shard of an EvalJob (configured by $FORESAIL_EVAL_CONFIG and $JOB_COMPLETION_INDEX, set by the operator)",
    )
    sub.add_parser(
        "eval-compare",
        help="an EvalJob's results against its spec.baseline's (configured by $FORESAIL_EVAL_CONFIG, set by the operator)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "eval-compare":
        from foresail.controllers.evalcompare import main as eval_compare

        return eval_compare()
    if args.cmd == "eval-worker":
        from foresail.controllers.evalworker import main as eval_worker

        return eval_worker()
    if args.cmd == "crds":
        return crds.main(args)
    if args.cmd == "storage-init":
        return storage_init.main(args)
    if args.cmd == "replay":
        return replay.main(args)
    if args.cmd == "status":
        return status.main(args)
    if args.cmd == "calibrate":
        return calibrate.main(args)
    if args.cmd == "version":
        print(f"foresail {__version__} (python {platform.python_version()})")
        return 0
    if args.cmd == "run":
        from foresail.controllers.operator import run

        return run(args.namespace, args.health_port, not args.no_leader_election)
    return 2
