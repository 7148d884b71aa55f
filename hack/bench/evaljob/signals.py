"""Production's queue depth and p99 from Triton's own metrics endpoint: what the eval worker yields to."""

from __future__ import annotations

import re
import urllib.request

__all__ = ["parse_signals", "triton_signals"]

_METRIC = re.compile(r"^(nv_inference_pending_request_count|nv_inference_request_summary_us)\{([^}]*)\} ([0-9.eE+-]+|NaN)$")


def parse_signals(text: str, model: str) -> tuple[float | None, float | None]:
    """Queue depth and p99 (ms) of ``model`` in Triton's Prometheus text; a NaN p99 (nothing served lately) is 0.
    Pure."""
    queue = p99 = None
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m or f'model="{model}"' not in m.group(2):
            continue
        if m.group(1) == "nv_inference_pending_request_count":
            queue = float(m.group(3))
        elif 'quantile="0.99"' in m.group(2):
            v = float(m.group(3))
            p99 = 0.0 if v != v else v / 1000.0
    return queue, p99


def triton_signals(metrics_port: int, model: str) -> tuple[float | None, float | None]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None, None
    return parse_signals(text, model)
