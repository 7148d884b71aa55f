"""``foresail storage-init``: fetch ``spec.model.repository.storageUri`` into the model volume (the init
container of a storageUri service's replicas, from the operator's image).

Success: the repository is in ``--dest`` and the termination message says ``digest=sha256:<hex> files=<n>
bytes=<n>`` (the reconciler records it in ``status.model``). Failure: exit 1 and one line ``<Reason>:
<message>`` (the reconciler's ``Ready=False, reason=ModelFetchFailed``). Credentials come from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optionally ``AWS_SESSION_TOKEN``), filled from the Secret
named in ``spec.model.repository.s3.secretName``.

``--hash DIR`` fetches nothing: it digests the repository already in ``DIR`` (a ``pvc`` repository, mounted
read-only) and reports it the same way, so that ``status.model`` and EvalJob provenance name what the replica
is about to load. It reads every file of the repository once per pod start; an unreadable file or directory
is exit 1 and ``ReadFailed: <message>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--uri", help="s3://bucket/prefix, gs://bucket/prefix or an http(s) archive URL")
    what.add_argument("--hash", type=Path, metavar="DIR", help="fetch nothing: digest the repository in DIR (a pvc repository)")
    p.add_argument("--dest", type=Path, help="directory to fill (the model volume); with --uri")
    p.add_argument("--endpoint", default="", help="S3 endpoint URL (s3:// and gs://)")
    p.add_argument("--region", default="us-east-1", help="region requests are signed for")
    p.add_argument("--addressing-style", choices=["path", "virtual"], default="path", help="the bucket in the path or in the host")
    p.add_argument("--sha256", default=None, help="expected sha256 of an http(s) archive")
    p.add_argument("--termination-log", default="/dev/termination-log", type=Path, help="where the one-line result goes")
    p.add_argument("--timeout", default=60.0, type=float, help="seconds without progress before a request fails")


def _report(path: Path, line: str) -> None:
    print(line, file=sys.stderr if not line.startswith("digest=") else sys.stdout, flush=True)
    try:
        path.write_text(line + "\n")
    except OSError as e:  # outside a pod (no /dev/termination-log): the printed line is the report
        print(f"storage-init: cannot write {path}: {e}", file=sys.stderr)


def _failed(path: Path, line: str, code: int) -> int:
    """Report ``line`` (``<Reason>: <message>``) and give the exit code ``code``."""
    _report(path, line)
    return code


def _hash(args: argparse.Namespace) -> int:
    from foresail.clients.storage import tree_digest

    t0 = time.monotonic()
    try:
        result = tree_digest(args.hash)
    except OSError as e:
        return _failed(args.termination_log, f"ReadFailed: {e}", 1)
    _report(args.termination_log, result.line())
    print(f"storage-init: hashed {args.hash} ({result.files} files, {result.bytes} bytes) in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.hash is not None:
        return _hash(args)
    if args.dest is None:
        return _failed(args.termination_log, "InvalidArguments: --uri needs --dest", 2)
    import httpx

    from foresail.clients.sigv4 import Credentials
    from foresail.clients.storage import FetchError, fetch
    from foresail.render.storage import default_endpoint, parse_storage_uri

    t0 = time.monotonic()
    try:
        uri = parse_storage_uri(args.uri)
    except ValueError as e:
        return _failed(args.termination_log, f"InvalidStorageUri: {e}", 2)
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    creds = Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN", "")) if key and secret else None
    endpoint = args.endpoint or default_endpoint(uri.scheme, args.region)
    try:
        with httpx.Client(timeout=args.timeout, follow_redirects=True) as client:
            result = fetch(uri, args.dest, client=client, endpoint=endpoint, region=args.region, creds=creds, sha256=args.sha256, virtual=args.addressing_style == "virtual")
    except FetchError as e:
        return _failed(args.termination_log, e.line(), 1)
    except OSError as e:
        return _failed(args.termination_log, f"WriteFailed: {e}", 1)
    _report(args.termination_log, result.line())
    print(f"storage-init: {args.uri} -> {args.dest} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0
