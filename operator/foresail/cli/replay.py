"""``foresail replay``: a trace (or a real service's recorded arrival rate) through Foresail's decision
code, HPA-, KEDA- and KPA-like baselines, static-at-peak and a perfect-foresight oracle."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from foresail.api.scalingpolicy import ScalingBehavior, ScalingPolicy

if TYPE_CHECKING:  # the replay packages (numpy, matplotlib) load only when a replay runs
    from foresail.replay.sim import ReplicaModel
    from foresail.replay.traces import Arrivals

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="CSV with a timestamp column (seconds or ISO-8601), optional work column; or an Azure trace")
    src.add_argument("--from-prometheus", metavar="URL", help="replay a real service's recorded arrival rate")
    p.add_argument("--service", help="NAMESPACE/NAME, with --from-prometheus")
    p.add_argument("--since", default="1d", help="history to replay with --from-prometheus (e.g. 7d)")
    auth = p.add_argument_group("Prometheus credentials, from files (as the chart's prometheus.auth mounts them)")
    for flag, what in (
        ("bearer-token-file", "a bearer token"),
        ("basic-auth-username-file", "basic auth: the user name"),
        ("basic-auth-password-file", "basic auth: the password"),
        ("ca-file", "a CA bundle to verify Prometheus' certificate (TLS is always verified)"),
        ("cert-file", "a client certificate"),
        ("key-file", "the client certificate's key"),
        ("headers-dir", "a directory, one file per extra header (e.g. X-Scope-OrgID)"),
    ):
        auth.add_argument(f"--prometheus-{flag}", default="", metavar="PATH", help=what)
    p.add_argument("--start", type=float, default=0.0, help="trace offset of the scored window, seconds")
    p.add_argument("--duration", type=float, help="trace seconds to score")
    p.add_argument("--prior-seconds", type=float, default=600.0,
                   help="replay seconds before --start that every policy runs through unscored (as much as the trace has)")  # fmt: skip
    p.add_argument("--compress", type=float, default=1.0, help="time compression factor")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--rate-scale", type=float, help="arrival rate multiplier")
    scale.add_argument("--peak-replicas", type=int, help="scale the rate so that the busiest 10 s need this many replicas")
    p.add_argument("--scale-method", choices=("poisson", "superpose"), default="poisson",
                   help="beyond 4x: Poisson resampling of the rate, or superposed time-shifted copies of the trace")  # fmt: skip
    p.add_argument("--uniform-work", action="store_true", help="every request costs the same (ignore the work/token columns)")
    p.add_argument("--curve", help="calibration curve JSON (foresail calibrate) to fit the replica model from")
    p.add_argument("--base-ms", type=float, default=20.0, help="batch time = base + per-item x batch (without --curve)")
    p.add_argument("--per-item-ms", type=float, default=2.0)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--cold-start", type=float, default=10.0, help="seconds from scale-up to serving")
    slo = p.add_mutually_exclusive_group()
    slo.add_argument("--slo-ms", type=float, help="p99 latency SLO, ms")
    slo.add_argument("--slo-x", type=float, default=4.0, help="SLO as a multiple of a single request's latency (default 4)")
    p.add_argument("--routing", choices=("round-robin", "per-connection", "least-outstanding"), default="round-robin",
                   help="per request round robin, kube-proxy with keep-alive/gRPC connections, or a least-outstanding gateway")  # fmt: skip
    p.add_argument("--connections", type=int, default=64, help="client connections, with --routing per-connection")
    p.add_argument("--connection-lifetime", type=float, default=60.0,
                   help="mean seconds before a connection is re-opened (0: never), with --routing per-connection")  # fmt: skip
    p.add_argument("--queue-max", type=int, default=0, help="Triton's max_queue_size per replica (0: unbounded); rejections miss")
    p.add_argument("--queue-timeout-ms", type=float, default=0.0, help="Triton's queue timeout (0: none); timed-out requests miss")
    p.add_argument("--policy", help="a ScalingPolicy YAML (policies/scaling/*.yaml) for Foresail's settings")
    p.add_argument("--policies", default="foresail,hpa,keda,kpa,static,oracle,oracle-capped")
    p.add_argument("--frontier", action="store_true", help="sweep each policy's main knob: SLO share vs GPU-seconds")
    p.add_argument("--target-share", type=float, default=0.995, help="the capped oracle's and the hindsight-best's share")
    p.add_argument("--name", default="replay")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1, help="run seeds --seed .. --seed+N-1 and report mean, min and max")
    p.add_argument("--out", default="out/replay")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--rollout", metavar="STEPS",
                   help="a rollout's steps, PERCENT:SECONDS,... (e.g. 10:60,50:60): its replica-seconds on the first policy's replicas")  # fmt: skip
    p.add_argument("--rollout-at", type=float, default=0.0, help="seconds into the scored window the rollout starts")


def _arrivals(args: argparse.Namespace) -> Arrivals:
    from foresail.replay import traces

    if args.from_prometheus:
        if not args.service:
            raise ValueError("--from-prometheus needs --service NAMESPACE/NAME")
        from foresail.clients.history import arrivals_from_prometheus
        from foresail.clients.promauth import PromAuth

        creds = PromAuth.from_settings(args)  # the --prometheus-* file arguments
        arr = arrivals_from_prometheus(args.from_prometheus, args.service, args.since, seed=args.seed, auth=creds)
    else:
        arr = traces.load_trace(args.trace)
    return traces.uniform_work(arr) if args.uniform_work else arr


def _model(args: argparse.Namespace) -> ReplicaModel:
    from foresail.replay.sim import ReplicaModel

    if args.curve:
        return ReplicaModel.from_curve(json.loads(Path(args.curve).read_text())["points"], args.max_batch)
    return ReplicaModel(args.base_ms, args.per_item_ms, args.max_batch)


def _rate_factor(args: argparse.Namespace, cut: Arrivals, model: ReplicaModel, slo: float, prior: float) -> float:
    """``--rate-scale``, or the factor at which the busiest 10 s of the scored window need ``--peak-replicas``."""
    from foresail.replay import traces

    if not args.peak_replicas:
        return float(args.rate_scale or 1.0)
    per = traces.per_second(cut)[math.ceil(prior) :] or [0]
    busiest = max(sum(per[i : i + 10]) / 10 for i in range(max(1, len(per) - 9)))
    return float(args.peak_replicas * model.capacity_rps(slo) / max(busiest, max(per) / 10, 1e-9))


def _behavior(args: argparse.Namespace) -> ScalingBehavior:
    if not args.policy:
        return ScalingBehavior()
    return ScalingPolicy.model_validate(yaml.safe_load(Path(args.policy).read_text())).behavior()


def main(args: argparse.Namespace) -> int:
    missing = [m for m in ("numba", *(() if args.no_png else ("matplotlib",))) if importlib.util.find_spec(m) is None]
    if missing:
        print(f"foresail replay needs {' and '.join(missing)}: pip install 'foresail[replay]'", file=sys.stderr)
        return 2
    from foresail.replay import traces
    from foresail.replay.rollout import parse_steps, rollout_cost, rollout_markdown, rollout_summary
    from foresail.replay.run import Scenario, markdown, run_seeds, write
    from foresail.replay.sim import Serving

    try:
        steps = parse_steps(args.rollout) if args.rollout else None
        if args.seeds < 1 or args.prior_seconds < 0 or not 0 < args.target_share <= 1:
            raise ValueError("--seeds must be >= 1, --prior-seconds >= 0 and --target-share in (0, 1]")
        arr = _arrivals(args)
        model = _model(args)
        slo = args.slo_ms if args.slo_ms else args.slo_x * model.batch_ms(1)
        prior_trace = min(args.prior_seconds * args.compress, args.start)
        cut = traces.reshape(
            arr,
            start=args.start - prior_trace,
            duration=None if args.duration is None else args.duration + prior_trace,
            compress=args.compress,
            seed=args.seed,
        )
        prior = prior_trace / args.compress
        factor = _rate_factor(args, cut, model, slo, prior)
        behavior = _behavior(args)
        serving = Serving(args.routing, args.connections, args.connection_lifetime, args.queue_max, args.queue_timeout_ms)

        def build(seed: int) -> Scenario:
            final = traces.reshape(cut, rate_scale=factor, seed=seed, method=args.scale_method) if factor != 1.0 else cut
            return Scenario(
                args.name, final, model, round(slo, 2), args.cold_start, behavior, prior_s=prior, serving=serving, seed=seed,
                target_share=args.target_share,
            )  # fmt: skip

        names = tuple(n.strip() for n in args.policies.split(",") if n.strip())
        summary, per_seed, results, first = run_seeds(
            build, list(range(args.seed, args.seed + args.seeds)), names, with_frontier=args.frontier
        )
    except (OSError, ValueError) as e:
        print(f"foresail replay: {e}", file=sys.stderr)
        return 2
    if args.seeds == 1:
        summary = per_seed[0]
    summary["rate_scale"] = round(factor, 3)
    summary["scale_method"] = args.scale_method if factor > 4 else "copies"
    extra_md = ""
    if steps is not None:
        policy = "foresail" if "foresail" in results else next(iter(results))
        res = results[policy]
        replicas = [(0.0, res.initial_replicas)] + [(t, n) for t, n, _ in res.replicas_t]
        rows = rollout_cost(replicas, first.prior_s + args.rollout_at, steps, args.cold_start)
        summary["rollout"] = rollout_summary(rows, policy)
        extra_md = rollout_markdown(summary["rollout"])
    out = Path(args.out)
    write(summary, first, results, out, png=not args.no_png, per_seed=per_seed if args.seeds > 1 else None)
    if extra_md:
        with (out / f"{summary['scenario']}.md").open("a") as f:
            f.write(extra_md)
    print(json.dumps(summary, indent=1))
    print(markdown(summary) + extra_md)
    return 0 if math.isfinite(slo) else 1
