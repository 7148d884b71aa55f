"""A real local Kubernetes control plane, from pinned binaries, with fake GPU nodes.

    hack/cluster up [--name N] [--nodes 4] [--gpus-per-node 8] [--gpu-product P[,P...]]
    hack/cluster down | status
    hack/cluster kubectl ARGS...      the pinned kubectl against this cluster
    hack/cluster exec -- CMD...       CMD inside the cluster network, with KUBECONFIG set

Processes (``components``): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes
with ``nvidia.com/gpu`` capacity: ``nodes``), the local pod runtime (``hack.testbed.runtime``) and
Prometheus (``prometheus``); certificates and kubeconfigs in ``pki``. Networking (``network``): a Linux
bridge holding the first address of a private /16; the apiserver listens on that bridge address
(reachable from the host and from every network namespace on the bridge); pod IPs come from the same /16,
and a "client" network namespace on the bridge is where everything that dials pod IPs runs (``exec``).
Nothing listens on any other address except loopback (etcd, component health ports).

State lives in a run directory (``.run/<name>/`` in the checkout unless ``FORESAIL_RUN_DIR`` says
otherwise, see ``hack.testbed.state``): PKI, kubeconfig, logs, the etcd data dir and ``state.json`` with
the PIDs ``up`` started. ``down`` stops exactly those PIDs, removes the network it created and the data dir.
The e2e suite's session fixture is a ``Cluster`` too.
"""

from hack.testbed.cluster.cluster import Cluster

__all__ = ["Cluster"]
