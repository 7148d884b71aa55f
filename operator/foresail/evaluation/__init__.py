"""PURE parts of the EvalJob worker: dataset shards, adaptive concurrency, scorers, result merging."""
