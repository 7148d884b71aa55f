"""The testbed and the tools around Foresail (never imported by the operator).

Layers, checked by import-linter (``.importlinter``), each importing only those below it:

* programs: ``demo`` (``make demo``) and ``bench`` (``python -m hack.bench.{autoscaler,evaljob,runtime}``);
* ``loadgen`` (the open-loop load generator) and ``calibrate`` (perf_analyzer curves of one replica);
* ``testbed.cluster``: the local Kubernetes control plane (``hack/cluster up|down|status|kubectl|exec``);
* ``testbed.runtime``: the pod runtime that plays the kubelet for Triton and Foresail pods;
* ``testbed.state`` (a cluster's run directory), ``testbed.triton``, ``testbed.manifests``;
* ``tools`` (the pinned binaries, ``python3 hack/tools.py ensure``);
* ``base``: log lines, paths, processes, waiting, network namespaces and the one Kubernetes API helper,
  standard library only.
"""
