"""EvalJob benchmarks against one real Triton replica of the emulated model (on loopback).

    .venv/bin/python -m hack.bench.evaljob [--out out/bench] [--quick]

1. Throughput: evaluations/s of the eval worker's core (``evaluation.runner`` with the worker's own
   Triton client, gRPC) at a fixed concurrency bound, relative to ``perf_analyzer``'s throughput at the
   same concurrency and batch size (gRPC). Also the adaptive limiter (1..bound) on its own, and the
   simplest possible tritonclient loop (the Python client library's ceiling on this machine).
2. Shared mode: production traffic at 70% of the replica's capacity at the SLO (open loop, the load
   generator), alone and then with an evaluation yielding to it (production pressure from Triton's own
   queue and p99 metrics, as the worker reads them through Prometheus), and with one that does not yield.
   Production p99 and the evaluation's EPS.
3. Resume: an evaluation stopped at 50% (requests in flight are lost and redone) and resumed on
   the same results directory, against an uninterrupted one: identical result files, and the wall time.

The worker core is what runs in the eval pods; the pod, its scheduling and Prometheus's scrape delay are
not part of these figures (the e2e suite runs the whole thing on the local cluster). Writes JSON and a
markdown table to ``--out``.

Modules: ``worker`` (the worker core and a bare client loop), ``signals`` (production pressure from Triton's
metrics), ``production`` (open-loop production traffic), ``markdown``, ``__main__`` (the three benchmarks).
"""
