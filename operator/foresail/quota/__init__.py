"""PURE: tenant/priority arbitration of GPUs on a snapshot; returns a plan, never acts."""
