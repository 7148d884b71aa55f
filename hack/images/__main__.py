"""``python -m hack.images build|lock|verify`` (run as root; ``make image`` runs ``build --export``)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hack.base.paths import OUT, REPO
from hack.images import __doc__ as DOC
from hack.images.build import BuiltImage, ensure
from hack.images.oci import write_archive
from hack.images.spec import NAMES

EXPORT = OUT / "images"
CHART_VALUES = REPO / "charts/foresail/values.yaml"


def summary(img: BuiltImage) -> dict[str, Any]:
    return {
        "name": img.name,
        "reference": img.pinned,
        "digest": img.digest,
        "size_bytes": img.size,
        "uncompressed_bytes": img.uncompressed,
        "layout": str(img.layout),
        "sbom": str(img.sbom),
        "steps": img.steps,
    }


def export(img: BuiltImage, out: Path) -> dict[str, str]:
    """The OCI archive (``skopeo copy oci-archive:FILE docker://...``) and the SBOM under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    archive, sbom = out / f"{img.name}-{img.tag}.oci.tar", out / f"{img.name}-{img.tag}.cdx.json"
    stamp = out / f".{img.name}-{img.tag}.digest"
    if not (archive.is_file() and stamp.is_file() and stamp.read_text() == img.digest):
        write_archive(img.layout, archive, 0)
        stamp.write_text(img.digest)
    sbom.write_text(img.sbom.read_text())
    return {"archive": str(archive), "sbom_copy": str(sbom)}


def pin_chart(digest: str, values: Path = CHART_VALUES) -> bool:
    """Write the operator image's digest into the chart's values (``image.digest``); whether it changed."""
    text = values.read_text()
    new = re.sub(r'(?m)^(  digest: )"?[^"\n]*"?$', f'\\g<1>"{digest}"', text, count=1)
    if new == text:
        return False
    values.write_text(new)
    return True


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| image | digest | compressed | uncompressed | steps (s, c = cached) |", "|---|---|---|---|---|"]
    for r in rows:
        steps = ", ".join(f"{k} {v['seconds']}{' c' if v['cached'] else ''}" for k, v in r["steps"].items())
        lines.append(
            f"| {r['reference'].split('@')[0]} | `{r['digest'][:19]}` | {r['size_bytes'] / 1e6:.1f} MB "
            f"| {r['uncompressed_bytes'] / 1e6:.1f} MB | {steps} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack.images", description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="build (or find cached) the images")
    p_build.add_argument("names", nargs="*", help=f"default: all ({', '.join(NAMES)})")
    p_build.add_argument(
        "--export", action="store_true", help=f"also write OCI archives and SBOMs to {EXPORT.relative_to(REPO)}/"
    )
    p_build.add_argument("--json", action="store_true", help="print the results as JSON")
    sub.add_parser("lock", help="pin the Debian packages and the wheels afresh")
    sub.add_parser("verify", help="build everything again in an empty cache and compare the digests")
    args = parser.parse_args(argv)

    if args.cmd == "lock":
        from hack.images.lock import lock_all

        lock_all()
        return 0
    if args.cmd == "verify":
        first = {n: {"digest": i.digest, **{k: v.get("digest") for k, v in i.steps.items()}} for n, i in ensure().items()}
        with tempfile.TemporaryDirectory(prefix="foresail-verify-") as tmp:
            t0 = time.monotonic()
            env = {**os.environ, "FORESAIL_CACHE": tmp}
            proc = subprocess.run(
                [sys.executable, "-m", "hack.images", "build", "--json"], env=env, cwd=REPO, capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout + proc.stderr)
                return proc.returncode
            rows = json.loads(proc.stdout.split("\n<!-- json -->\n", 1)[1])
            second = {r["name"]: {"digest": r["digest"], **{k: v.get("digest") for k, v in r["steps"].items()}} for r in rows}
            seconds = round(time.monotonic() - t0, 1)
        same = first == second
        print(json.dumps({"reproducible": same, "first": first, "second": second, "cold_build_seconds": seconds}, indent=1))
        return 0 if same else 1
    t0 = time.monotonic()
    built = ensure(tuple(args.names) or NAMES)
    rows = [summary(i) for i in built.values()]
    if args.export:
        for r, img in zip(rows, built.values(), strict=True):
            r.update(export(img, EXPORT))
        (EXPORT / "images.json").write_text(json.dumps(rows, indent=1) + "\n")
        if "foresail" in built and pin_chart(built["foresail"].digest):
            print(f"{CHART_VALUES.relative_to(REPO)}: image.digest {built['foresail'].digest}")
    print(markdown(rows))
    print(f"\n{time.monotonic() - t0:.1f} s")
    if args.json:
        print("\n<!-- json -->\n" + json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
