"""Calibrate one Triton replica: throughput and latency against concurrency, measured by perf_analyzer.

    .venv/bin/python -m hack.calibrate --model emulated [--concurrency 1,2,4,8,16,32] [--out curve.json]

Starts one tritonserver (the pinned binary) on loopback with ``e2e/models`` (or ``--model-repository``)
(``server``), runs Triton's ``perf_analyzer`` once per concurrency level (``perf``), and writes the curve as
JSON: ``{"model", "points": [{"concurrency", "throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
"avg_ms"}], ...}``. The autoscaler's capacity prior and the replay simulator read these curves.
A markdown table goes to stderr.
"""
