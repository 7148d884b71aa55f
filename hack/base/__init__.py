"""Helpers every part of hack/ and e2e/ shares: log lines, paths, processes, waiting, network namespaces and
the one Kubernetes API helper. Standard library only (``hack/tools.py`` runs before the virtualenv exists)."""
