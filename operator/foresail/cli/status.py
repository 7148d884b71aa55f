"""``foresail status [-n NAMESPACE] NAME`` (or ``NAMESPACE/NAME``): one InferenceService in one view.

Reads the service, its pods and its recent Events from the apiserver with the user's kubeconfig and
shows what the operator decided and why: replicas, the autoscaler's recommendation (reason, base rate,
forecast, headroom and error budget, capacity per replica and its source, burst level, idle hold), the
live signals (their source and freshness, each window's arrivals, completions, rejections, in-flight
growth, queue wait, latency and p99), the tenant's grant, cold start, each replica's warm-up and the conditions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from foresail.api.inferenceservice import InferenceServiceStatus
from foresail.api.objects import LABEL_ISVC, WARM_GATE, condition, parse_rfc3339, pod_is_live
from foresail.api.reasons import ConditionType

__all__ = ["add_arguments", "main", "render_status"]

EVENTS_SHOWN = 8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="[NAMESPACE/]NAME", help="the InferenceService")
    p.add_argument("-n", "--namespace", help="its namespace (default: the kubeconfig context's, else default)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")


def _target(args: argparse.Namespace) -> tuple[str | None, str]:
    ns, sep, name = str(args.target).rpartition("/")
    if sep and args.namespace and ns != args.namespace:
        raise ValueError(f"{args.target!r} names namespace {ns!r} but -n says {args.namespace!r}")
    if not name:
        raise ValueError(f"{args.target!r}: expected NAME or NAMESPACE/NAME")
    return (ns or args.namespace or None), name


def _context_namespace(path: str | None, context: str | None) -> str:
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def main(args: argparse.Namespace) -> int:
    from kubernetes.config import ConfigException

    from foresail.clients.kube import ApiException, kube_from_kubeconfig

    try:
        ns, name = _target(args)
        ns = ns or _context_namespace(args.kubeconfig, args.context)
        kube = kube_from_kubeconfig(args.kubeconfig, args.context)
        isvc = kube.get("InferenceService", ns, name)
        if isvc is None:
            print(f"foresail status: InferenceService {ns}/{name} not found", file=sys.stderr)
            return 1
        pods = kube.list("Pod", ns, f"{LABEL_ISVC}={name}")
        events = [
            e
            for e in kube.list("Event", ns)
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == "InferenceService"
        ]
    except (ValueError, OSError, ApiException, ConfigException) as e:
        print(f"foresail status: {e}", file=sys.stderr)
        return 2
    print(render_status(isvc, pods, events, time.time()))
    return 0


def _ago(stamp: str | None, now: float) -> str:
    if not stamp:
        return "?"
    try:
        s = max(0.0, now - parse_rfc3339(stamp))
    except ValueError:
        return stamp
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.1f}h ago"


def _num(x: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def _header(isvc: Mapping[str, Any]) -> list[str]:
    md, spec = isvc.get("metadata") or {}, isvc.get("spec") or {}
    sc = spec.get("scaling") or {}
    model = (spec.get("model") or {}).get("name", "?")
    slo = (spec.get("slo") or {}).get("p99LatencyMs")
    policy = sc.get("policyRef") or "defaults"
    bounds = f"{sc.get('minReplicas', 1)}..{sc.get('maxReplicas', 10)}"
    return [
        f"InferenceService {md.get('namespace')}/{md.get('name')}",
        f"  model {model}   SLO p99 {slo} ms   replicas {bounds}   policy {policy}   priority {spec.get('priority', 'standard')}",
    ]


def _decision(st: InferenceServiceStatus, now: float) -> list[str]:
    rec = st.recommendation
    if rec is None:
        return ["Decision     none yet (the autoscaler has not decided for this service)"]
    out = [f"Decision     {rec.replicas} replicas: {rec.reason} ({_ago(rec.time, now)})"]
    if rec.message:
        out.append(f"             {rec.message}")
    out.append(
        f"             base {_num(rec.base_rps, ' rps')}   forecast {_num(rec.forecast_rps, ' rps')} at +{_num(rec.lead_seconds, ' s')}   "
        f"headroom x{_num(rec.headroom, '', 2)}   budget {_num(rec.error_budget_percent, '%', 2)} (floor {_num(rec.late_floor_percent, '%', 2)})"
    )
    out.append(
        f"             capacity {_num(rec.capacity_rps, ' rps/replica')} ({rec.capacity_source or '-'}, ratio {_num(rec.capacity_ratio, '', 2)})   "
        f"burst {_num(rec.burst_rps, ' rps')}   idle hold {_num(rec.hold_seconds, ' s')}"
    )
    return out


def _signals(st: InferenceServiceStatus) -> list[str]:
    """The live signals: where from, how fresh, each window, and the work in flight."""
    obs = st.observed
    if obs is None:
        return ["Signals      none yet"]
    source = f"from {obs.source}" if obs.source else "unavailable"
    out = [
        f"Signals      {source}: samples every {_num(obs.sample_interval_seconds, ' s')}, newest {_num(obs.age_seconds, ' s')} old; "
        f"{obs.serving_replicas if obs.serving_replicas is not None else '-'} serving replicas, "
        + (
            "p99 not measured yet (no replica warm for a minute)"
            if obs.p99_replicas == 0
            else f"p99 from {obs.p99_replicas if obs.p99_replicas is not None else '-'} (warm for a minute)"
        )
    ]
    if obs.note:
        out.append(f"             {obs.note}")
    if obs.windows:
        out.append("             window  arrivals  completed  rejected  in-flight growth  queue wait  mean latency   p99")
        for w in obs.windows:
            p99 = "    -" if w.p99_ms is None else f"{w.p99_ms:>5.1f} ms"
            out.append(
                f"             {w.seconds:>4.0f} s  {w.arrival_rps:>8.1f}  {w.completion_rps:>9.1f}  {w.rejection_rps:>8.1f}  "
                f"{w.queue_growth_rps:>16.1f}  {w.mean_queue_wait_ms:>7.1f} ms  {w.mean_latency_ms:>9.1f} ms  {p99}"
            )
        out.append(f"             now: {_num(obs.queue_depth, '', 0)} queued, {_num(obs.in_flight, '', 1)} in flight (queued + executing); rates in requests/s")
    return out


def _quota(st: InferenceServiceStatus) -> str:
    q = st.quota
    if q is None:
        return "Quota        no tenant arbitrates this service"
    line = f"Quota        tenant {q.tenant} grants {q.granted_replicas} of {q.requested_replicas} replicas ({q.gpus_per_replica} GPU each)"
    return line + (f": {q.reason}" if q.reason else "")


def _warmup(st: InferenceServiceStatus, pods: Sequence[Mapping[str, Any]]) -> list[str]:
    cs = st.cold_start
    out = [
        "Cold start   "
        + (
            f"p50 {_num(cs.p50_seconds, ' s')}   p90 {_num(cs.p90_seconds, ' s')}   ({cs.samples} starts)"
            if cs is not None and cs.samples
            else "not measured yet"
        )
    ]
    rows = []
    for p in sorted((p for p in pods if pod_is_live(p)), key=lambda p: str(p["metadata"]["name"])):
        gate = condition(p, WARM_GATE) or {}
        state = {"True": "warm", "False": "failed"}.get(str(gate.get("status")), "warming")
        phase = (p.get("status") or {}).get("phase", "?")
        rows.append((state, f"  {p['metadata']['name']:<40} {phase:<9} {state:<8} {str(gate.get('message') or '')[:100]}"))
    counts = ", ".join(f"{sum(1 for s, _ in rows if s == k)} {k}" for k in ("warm", "warming", "failed"))
    out.append(f"Warm-up      {len(rows)} pods: {counts}")
    return [*out, *(line for _, line in rows)]


def _conditions(st: InferenceServiceStatus, now: float) -> list[str]:
    out = ["Conditions"]
    order = {t.value: i for i, t in enumerate(ConditionType)}
    for c in sorted(st.conditions, key=lambda c: order.get(c.type, 99)):
        out.append(f"  {c.type:<17} {c.status.value:<7} {c.reason:<22} {c.message[:90]} ({_ago(c.last_transition_time, now)})")
    return out


def _events(events: Sequence[Mapping[str, Any]], now: float) -> list[str]:
    def when(e: Mapping[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or "")

    latest = sorted(events, key=when)[-EVENTS_SHOWN:]
    if not latest:
        return []
    out = [f"Events (latest {len(latest)})"]
    for e in latest:
        out.append(f"  {_ago(when(e), now):>9}  {e.get('type', ''):<8} {e.get('reason', ''):<20} {str(e.get('message', ''))[:100]}")
    return out


def render_status(isvc: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], now: float) -> str:
    """The view (pure: the listed objects and the time in, text out)."""
    try:
        st = InferenceServiceStatus.model_validate(isvc.get("status") or {})
    except ValidationError as e:
        return "\n".join([*_header(isvc), f"status unreadable: {e}"])
    lines = [
        *_header(isvc),
        f"Replicas     desired {st.desired_replicas}   existing {st.replicas}   ready {st.ready_replicas}   "
        f"warm {st.warm_replicas}   starting {st.starting_replicas}",
        *_decision(st, now),
        *_signals(st),
        _quota(st),
        *_warmup(st, pods),
        *_conditions(st, now),
        *_events(events, now),
    ]
    return "\n".join(lines)
