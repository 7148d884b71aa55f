"""The scale benchmark (issue 14): the operator checked out, on the local cluster, at hundreds to thousands of
InferenceServices whose replicas kwok simulates, with real Prometheus scraping Triton-format series.

``python -m hack.bench_scale --services 200 --namespaces 10 --tenants 4 --replicas-per-service 5 --minutes 5 --seed 1``
(``make bench-scale``; hold ``flock /tmp/foresail-cluster.lock`` on a shared machine). What it does:

1. starts the local cluster ``bench-scale`` with enough kwok GPU nodes (or reuses it: ``--keep``), installs the
   operator by the chart as the e2e suite does, Tenants owning namespaces ``bench-<i>``, and services of pause
   replicas (warm-up off, one GPU each, ``balanced``, minReplicas 1, maxReplicas 2x ``--replicas-per-service``);
2. runs ONE metrics source process (``source``) serving Triton's series for every running replica, with the
   labels the operator queries by; the cluster's Prometheus scrapes it as K static targets with
   ``honor_labels`` (``run.scrape_config``); the rates follow a seeded load model (``load``): constant for
   ``--steady-seconds``, then steps every ``--period-seconds``; latency answers rate / replicas (M/M/1);
3. samples the leader's ``/metrics`` (pass durations from the loop histogram's sum and count, its apiserver
   requests and Prometheus queries per pass, RSS and CPU), the apiserver's ``/metrics`` (requests by verb
   of all clients; by APF flow schema: ``service-accounts`` is the operator's), Prometheus' own query
   counter, the Lease, and a watch of the Deployments (replica writes, against the load model's steps);
4. optionally churns (``--churn K --churn-minutes M``): K services created and deleted repeatedly, the
   leader's RSS before and after, series of deleted services left on its ``/metrics``;
5. writes ``out/bench/scale-<services>.json`` and ``.md`` (``figures``: the issue's goals beside the figures).

The pure parts (load model, exposition text, figures) have unit tests (``tests/hack/test_bench_scale.py``).
"""
