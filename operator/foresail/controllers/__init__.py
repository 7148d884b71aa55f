"""Thin kopf handlers and the single autoscaler loop: snapshot -> pure code -> apply diff -> status."""
