"""``make demo``: Foresail end to end on a local cluster, in a few minutes.

Starts a cluster (``demo``), installs the chart, applies the scaling presets, the example model and an
InferenceService, replays a compressed slice of a shared trace through the load generator while a live
table shows replicas, warm replicas, queue, p99 and the autoscaler's reason, then writes a report
(markdown + PNG + the load generator's per-request CSV) to ``out/demo/`` and shuts everything down.

Modules: ``setup`` (the tenant and the service), ``timeline`` (the live table's rows), ``report`` (markdown
and PNG), ``__main__`` (the run).
"""
