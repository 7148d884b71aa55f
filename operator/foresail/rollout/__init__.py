"""PURE: safe model rollouts (issue 19): the gates of a step (gates.py) and the step machine (steps.py);
takes ``now`` as an argument, never reads a clock, does no IO."""
