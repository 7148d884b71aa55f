"""What-if replay: traces (and the synthetic day), the compiled simulator core and its Python reference,
what policies see (signals), baselines and oracles, runs with frontiers and seeds, figures, benchmarks."""
