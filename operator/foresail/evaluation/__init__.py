"""PURE parts of the EvalJob worker: dataset shards, adaptive concurrency, scorers, result merging.

``dataset`` (JSONL -> items), ``sharding`` (which pod evaluates what, in which order), ``scoring``
(built-in and plugin scorers), ``limiter`` (AIMD concurrency, production pressure, rate cap),
``results`` (append-only per-shard logs, compaction, merge), ``progress`` (recent windows, reports) and
``runner`` (the async loop of one shard). All IO (Triton, Kubernetes, Prometheus, the clock) is injected.
"""
