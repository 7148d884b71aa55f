"""PURE: safe model rollouts (issue 19): the gates of a step (gates.py), the step machine (steps.py) and the
replica split of two revisions (split.py); takes ``now`` as an argument, never reads a clock, does no IO."""
