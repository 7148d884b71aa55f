"""``make demo``: Foresail end to end on a local cluster, in a few minutes.

Starts a cluster (``demo``), installs the chart, applies the scaling presets, the example model and an
InferenceService, replays a compressed slice of a shared trace through the load generator while a live
table shows replicas (desired, ready, warm), arrivals and the forecast, queue, p99 against the SLO and the
autoscaler's reason, then writes a report (markdown + PNG + the load generator's per-request CSV) to
``out/demo/`` and shuts everything down. On a terminal the table is drawn in place by ``rich`` under a
progress bar of the trace replay; elsewhere (or with ``--plain``) it is one plain line per sample.

Modules: ``setup`` (the tenant and the service), ``timeline`` (the table's rows and plain lines), ``live``
(the display: rich on a terminal, plain lines elsewhere), ``report`` (markdown and PNG), ``__main__`` (the run).
"""
