"""Autoscaler benchmarks (figures, not tests; outside ``make test``).

    .venv/bin/python -m hack.bench.autoscaler [--out out/bench] [--only reaction-sim|reaction-cluster|closed-loop] [--quick]

* ``reaction-sim``: a 10x step of the arrival rate and a 5-minute linear ramp through the replay simulator
  (the operator's own decision code), with the README's replay conventions (a replica of 100 ms + 10 ms/item,
  max batch 32, SLO 4x a single request), cold starts 10 s and 60 s, for Foresail (``balanced``) and the
  baselines, plus ``instant`` (every replica the new rate needs, started at the step: the floor for any
  reactive policy). Step: seconds from the step until the p99 of the requests arriving in each 1 s (and 5 s)
  window is back within the SLO and stays there; goal: cold start + 2 ticks. Ramp: requests over the SLO;
  goal: none.
* ``reaction-cluster``: the same step (and ramp; ``--quick`` skips it) on a local cluster (``bench-as``):
  real Triton serving the emulated model, Prometheus, the operator installed by the chart, the load
  generator in the client network namespace; per-request latencies and replicas over time; next to it
  what the simulator predicts for the same arrivals, model and measured cold start. The load starts once
  the service is warm and its observed p99 is clear of the warm-up; ``--cluster-low-seconds 420`` starts
  the step from a settled service (past the 300 s scale-down delay).
* ``closed-loop``: a 15-minute slice of the shared conversation trace, compressed and rate-scaled so that
  the operator's plan at the busiest 10 s is ~8 replicas, through the operator on the local cluster and
  through the replay simulator configured like the cluster (same arrivals, emulated model, measured cold
  start, same capacity prior, tick and rate window, the same warm start); SLO share and replica-seconds side
  by side. The simulator counts as trustworthy when both agree within 2 points and 10%.

``--cold-requests 0`` removes the emulated model's slow first executions (their latencies stay in the
operator's p99 signal after each warm-up); output names then carry ``-coldreq0``. ``--reanalyse`` recomputes
the cluster figures from the files a run left in ``--out`` (per-request CSV, samples), without a cluster.

Each benchmark writes ``<name>.json`` and ``<name>.md`` into ``--out`` and prints the table. Cluster
benchmarks wait (up to 40 minutes, polling every 30 s) until no other local cluster runs on the machine,
and always stop their own cluster.

Modules: ``settings`` (models, SLOs, the policy), ``reaction_sim``, ``reaction_cluster``, ``closed_loop`` (the three
benchmarks), ``session`` (the cluster, the chart, the service), ``sampling`` (load and samples of a cluster run,
recorded and reloaded), ``predict`` (the simulator configured like the cluster), ``markdown``; the figures
themselves are ``foresail.replay.figures``.
"""
