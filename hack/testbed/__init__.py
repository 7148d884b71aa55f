"""The local testbed: a real Kubernetes control plane from pinned binaries (``cluster``) and the pod runtime
that plays the kubelet for Triton and Foresail pods on its fake GPU nodes (``runtime``). Both read a
cluster's run directory through ``state``; the runtime never imports the cluster package."""
