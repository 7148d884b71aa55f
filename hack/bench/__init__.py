"""Benchmarks (figures, not tests; outside ``make test``): ``python -m hack.bench.autoscaler``,
``python -m hack.bench.evaljob``, ``python -m hack.bench.runtime``. Each writes JSON and a markdown table
(``report``) into ``out/bench/`` and prints the table."""
