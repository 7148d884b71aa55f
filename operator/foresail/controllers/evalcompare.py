"""``foresail eval-compare``: an EvalJob's per-item results against its baseline's, in the one pod of its compare
Job (``render.evaljob_baseline``).

Reads ``results.jsonl`` of both directories, runs ``evaluation.compare``, writes every flipped item to
``flipped.jsonl`` and the summary to ``compare.json`` in the job's results directory (atomically), then reports
``{"id", "summary"}`` (or ``{"id", "error", "missing"}``) into the job's progress ConfigMap under the key
``compare``, retrying. Exit codes: 0 reported (a missing results file is a report too: the baseline has none
yet), 1 the report could not be written (the Job retries the pod).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foresail.clients.kube import Kube, load_config
from foresail.evaluation.compare import compare, flipped_records
from foresail.evaluation.results import RESULTS_FILE, canonical, write_atomic
from foresail.render.evaljob import EXIT_BAD_INPUT, WORKER_CONFIG_ENV
from foresail.render.evaljob_baseline import FLIPPED_FILE, SUMMARY_FILE

__all__ = ["main", "report_of", "run"]

log = logging.getLogger("foresail.eval-compare")
REPORT_ATTEMPTS = 6


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def report_of(config: dict[str, Any]) -> dict[str, Any]:
    """Compare the two directories of ``config``, write flipped.jsonl and compare.json, return the report."""
    cid = config["id"]
    base_dir, cand_dir = Path(config["baselineDir"]), Path(config["candidateDir"])
    try:
        baseline = _records(base_dir / RESULTS_FILE)
    except FileNotFoundError:
        return {"id": cid, "missing": "baseline", "error": f"the baseline has no {RESULTS_FILE} in {base_dir} (not complete?)"}
    except (OSError, ValueError) as e:
        return {"id": cid, "error": f"the baseline's {base_dir / RESULTS_FILE}: {e}"}
    try:
        candidate = _records(cand_dir / RESULTS_FILE)
    except (OSError, ValueError) as e:
        return {"id": cid, "missing": "candidate", "error": f"this job's {cand_dir / RESULTS_FILE}: {e}"}
    c = compare(baseline, candidate, alpha=float(config["alpha"]), seed=int(config.get("seed", 0)))
    summary = c.summary()
    write_atomic(cand_dir / FLIPPED_FILE, (canonical(r) for r in flipped_records(c)))
    write_atomic(cand_dir / SUMMARY_FILE, [canonical({"id": cid, "baseline": str(base_dir), **summary})])
    log.info("compared with %s: %s", base_dir, c.message)
    return {"id": cid, "summary": summary}


def run(config: dict[str, Any], kube: Kube, sleep: Callable[[float], None] = time.sleep) -> int:
    try:
        report = report_of(config)
    except OSError as e:
        report = {"id": config["id"], "error": f"writing the comparison: {e}"}
    text = json.dumps(report, sort_keys=True, separators=(",", ":"))
    for attempt in range(REPORT_ATTEMPTS):
        try:
            kube.merge_patch("ConfigMap", config["namespace"], config["progressConfigMap"], {"data": {config["key"]: text}})
            return 0
        except Exception as e:
            log.warning("comparison not reported (attempt %d of %d): %r", attempt + 1, REPORT_ATTEMPTS, e)
            if attempt + 1 < REPORT_ATTEMPTS:
                sleep(min(2.0**attempt, 30.0))
    return 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raw = os.environ.get(WORKER_CONFIG_ENV)
    if not raw:
        log.error("%s must be set (the operator's compare Job sets it)", WORKER_CONFIG_ENV)
        return EXIT_BAD_INPUT
    load_config()
    return run(json.loads(raw), Kube())


if __name__ == "__main__":
    sys.exit(main())
