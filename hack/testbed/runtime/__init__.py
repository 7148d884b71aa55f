"""The local pod runtime: plays the kubelet and its container runtime on kwok's fake nodes.

    python -m hack.testbed.runtime --name CLUSTER      (started and stopped by hack/cluster)

For every pod bound to a fake node whose containers are not all pause images (those are kwok's), it:

* gives the pod its own network namespace on the cluster bridge holding the pod IP it allocates (``sandbox``);
* materialises volumes (``volumes``): configMap, secret, emptyDir, persistentVolumeClaim (a per-claim
  directory, provisioned by the ``local`` StorageClass this runtime serves: ``provisioner``), hostPath and
  projected volumes (service-account token via the TokenRequest API, the cluster CA, downward API),
  owned by the pod's fsGroup, an emptyDir of medium Memory a tmpfs of its sizeLimit;
* pulls each container's image by its ``imagePullPolicy`` through the cluster's registry mirror configuration
  (``pull``, ``store``: one image store per cluster, unpacked once by umoci) and runs the container with runc on
  an overlay of it (``runc``), with the configuration a CRI runtime derives from the pod (``ocispec``: command,
  user, groups, capabilities, no-new-privileges, read-only root, mounts, /dev/shm, CPU and memory limits;
  ``launch`` ties them together with the kubelet's Events); ``FORESAIL_RUNTIME=processes`` instead runs Triton
  and Foresail images as processes from the checkout, a fast mode for development (``processes``);
* reports status like the kubelet (``status``, ``containers``, ``probes``): container readiness from the real
  readiness probe, pod Ready only when every container is ready *and* every readiness gate is True,
  liveness failures and crashes restart the container with back-off and ``restartCount``, Job pods end
  Succeeded/Failed by exit code, deletion sends SIGTERM, waits the grace period, then SIGKILL, then removes
  the pod (``worker``).

Container logs: ``<run dir>/logs/pods/<namespace>_<pod>/<container>.log`` (``kubectl logs`` does not
work: there is no kubelet API).
"""
