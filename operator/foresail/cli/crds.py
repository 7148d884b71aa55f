"""``foresail crds apply DIR``: create or replace the CustomResourceDefinitions in DIR's ``*.yaml`` (the chart's
pre-upgrade hook Job, from the chart's ``crds/``; Helm itself installs ``crds/`` only on first install).

Each CRD is checked against the installed one first (``foresail.api.crd_compat``): one that would break
stored objects (a field or version removed, a field newly required, a type changed, an enum narrowed, the
storage version moved: a downgrade, typically) is refused, nothing is written, and the command exits 1
naming the changes, so ``helm upgrade`` fails before anything changed. Otherwise the CRDs are replaced
whole (an update with the installed resourceVersion, labels and annotations kept), then it waits until
each is Established with its names accepted. In a pod: the service account's token; else the kubeconfig.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from foresail.api.crd_compat import incompatibilities
from foresail.clients.kube import ApiException, Kube, api_message, load_config, path_for

__all__ = ["Incompatible", "add_arguments", "apply_crds", "established", "main"]

KIND = "CustomResourceDefinition"


class Incompatible(Exception):
    """New CRDs that would break objects stored under the installed ones."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["apply"], help="apply: create or replace the CRDs in DIR")
    p.add_argument("dir", type=Path, help="directory of CRD YAML files (*.yaml)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the CRDs to be Established")


def load(directory: Path) -> list[dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]


def established(crd: dict[str, Any]) -> bool:
    conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
    accepted = ((crd.get("status") or {}).get("acceptedNames") or {}).get("kind")
    return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True" and accepted == crd["spec"]["names"]["kind"]


def _replacement(new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    md = current["metadata"]
    nmd = new.get("metadata") or {}
    meta = {
        "name": md["name"],
        "resourceVersion": md["resourceVersion"],
        "labels": {**(md.get("labels") or {}), **(nmd.get("labels") or {})},
        "annotations": {**(md.get("annotations") or {}), **(nmd.get("annotations") or {})},
    }
    return {**new, "metadata": meta}


def apply_crds(kube: Kube, crds: list[dict[str, Any]], log: Callable[[str], None] = print) -> None:
    """Create the missing CRDs and replace the others, after checking every one (all or nothing on refusal)."""
    current = {c["metadata"]["name"]: kube.get(KIND, None, c["metadata"]["name"]) for c in crds}
    broken = [line for c in crds if (cur := current[c["metadata"]["name"]]) is not None for line in incompatibilities(cur, c)]
    if broken:
        raise Incompatible("refusing to replace the installed CRDs, stored objects would break:\n  " + "\n  ".join(broken))
    for crd in crds:
        name = crd["metadata"]["name"]
        for attempt in range(5):
            cur = current[name] if attempt == 0 else kube.get(KIND, None, name)
            try:
                if cur is None:
                    kube.create(crd)
                    log(f"{name}: created")
                else:
                    out = kube.request("PUT", path_for(KIND, None, name), _replacement(crd, cur))
                    before, after = cur["metadata"].get("generation"), out["metadata"].get("generation")
                    log(f"{name}: {'replaced' if before != after else 'unchanged'} (generation {before} -> {after})")
                break
            except ApiException as e:
                if e.status != 409 or attempt == 4:  # a conflict: changed meanwhile (or created), read it again
                    raise


def wait_established(kube: Kube, names: list[str], timeout: float) -> list[str]:
    """The names not yet Established with their names accepted after ``timeout`` seconds (empty: all are)."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not established(kube.get(KIND, None, n) or {"spec": {"names": {}}})]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return pending


def main(args: argparse.Namespace) -> int:
    crds = load(args.dir)
    if not crds:
        print(f"foresail crds: no CustomResourceDefinition in {args.dir}/*.yaml", file=sys.stderr)
        return 1
    load_config()
    kube = Kube()
    t0 = time.monotonic()
    try:
        apply_crds(kube, crds, lambda line: print(line, flush=True))
    except Incompatible as e:
        print(f"foresail crds: {e}", file=sys.stderr)
        return 1
    except ApiException as e:
        print(f"foresail crds: {e.status} {api_message(e)}", file=sys.stderr)
        return 1
    pending = wait_established(kube, [c["metadata"]["name"] for c in crds], args.timeout)
    if pending:
        print(f"foresail crds: not Established after {args.timeout:.0f}s: {', '.join(pending)}", file=sys.stderr)
        return 1
    print(f"foresail crds: {len(crds)} CRDs applied and Established in {time.monotonic() - t0:.1f}s", flush=True)
    return 0
