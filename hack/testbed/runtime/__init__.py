"""The local pod runtime: plays the kubelet on kwok's fake nodes for the images Foresail knows.

    python -m hack.testbed.runtime --name CLUSTER      (started and stopped by hack/cluster)

For every pod bound to a fake node whose containers are not all pause images (those are kwok's), it:

* gives the pod its own network namespace on the cluster bridge holding the pod IP it allocates (``sandbox``);
* materialises volumes (``volumes``): configMap, secret, emptyDir, persistentVolumeClaim (a per-claim
  directory, provisioned by the ``local`` StorageClass this runtime serves: ``provisioner``), hostPath and
  projected volumes (service-account token via the TokenRequest API, the cluster CA, downward API),
  bind-mounted at the container's mountPath inside a private mount namespace (``mounts``);
* runs each container as local processes (``command``): Triton images (repository ending in ``tritonserver``)
  with the tritonserver binary of the nvidia-pytriton wheel, the Foresail image with ``python -m foresail``
  from the project's virtualenv; any other image waits with reason ``UnsupportedLocalImage`` (``images``);
* reports status like the kubelet (``status``, ``containers``, ``probes``): container readiness from the real
  readiness probe, pod Ready only when every container is ready *and* every readiness gate is True,
  liveness failures and crashes restart the container with back-off and ``restartCount``, Job pods end
  Succeeded/Failed by exit code, deletion sends SIGTERM, waits the grace period, then SIGKILL, then removes
  the pod (``worker``).

Container logs: ``<run dir>/logs/pods/<namespace>_<pod>/<container>.log`` (``kubectl logs`` does not
work: there is no kubelet API).
"""
