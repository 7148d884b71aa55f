"""Unit tests of foresail.rollout (pure): gates, the step machine, the replica split."""
