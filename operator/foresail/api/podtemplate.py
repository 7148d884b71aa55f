"""``spec.triton.podTemplate``: what users add to the Triton pods, the way KServe lets them extend the
predictor's pod spec: labels and annotations, a service account, image pull secrets, node selectors,
tolerations, affinity, topology spread, the pod's security context, volumes, and for the ``triton`` container
extra env, envFrom, volume mounts and its security context; other containers are added (sidecars).

What Foresail renders itself cannot be overlaid, and trying is refused at admission with the field named:
the Triton container's image, command, args and resources (``spec.triton``), the volumes ``models``,
``dshm`` and ``tmp``, and labels under ``foresail.dev/`` and ``app.kubernetes.io/`` (they select the pods).
Kubernetes objects inside (tolerations, affinity, volume sources, security contexts) are checked by the
apiserver when the Deployment is applied; a refusal there is a ``Ready=False, reason=InvalidPodTemplate``
condition with its message.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foresail.api.meta import ARG, LIST_MAX, SpecModel

__all__ = ["RESERVED_LABEL_PREFIXES", "RESERVED_VOLUMES", "TRITON_CONTAINER", "PodTemplateOverlay"]

TRITON_CONTAINER = "triton"
RESERVED_VOLUMES = ("models", "dshm", "tmp")
RESERVED_LABEL_PREFIXES = ("foresail.dev/", "app.kubernetes.io/")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
OBJECTS = "Kubernetes objects, checked by the apiserver when the Deployment is applied"


class _Open(BaseModel):
    """A Kubernetes object whose other fields pass through as written."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")


class VolumeOverlay(_Open):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="allow",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "!(self.name in ['models', 'dshm', 'tmp'])", "message": "volume names models, dshm and tmp are Foresail's"}
            ]
        },
    )
    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Volume name (not models, dshm or tmp).")

    @model_validator(mode="after")
    def _not_reserved(self) -> VolumeOverlay:
        if self.name in RESERVED_VOLUMES:
            raise ValueError(f"volume names {', '.join(RESERVED_VOLUMES)} are Foresail's")
        return self


class EnvOverlay(_Open):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Variable name.")


class MountOverlay(_Open):
    name: str = Field(min_length=1, max_length=63, description="The volume.")
    mount_path: str = Field(alias="mountPath", min_length=1, pattern=r"^/", description="Where, an absolute path.")


class ContainerOverlay(SpecModel):
    """The ``triton`` container's additions, or a container to add."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.name != 'triton' || (!has(self.image) && !has(self.command) && !has(self.args) && !has(self.resources))",
                    "message": "the triton container's image, command, args and resources come from spec.triton",
                },
                {"rule": "self.name == 'triton' || has(self.image)", "message": "an added container needs an image"},
            ]
        },
    )
    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="triton, or the name of a container to add.")
    image: str | None = Field(default=None, min_length=1, description="Image of an added container (not for triton).")
    command: list[ARG] | None = Field(default=None, max_length=LIST_MAX, description="Command of an added container.")
    args: list[ARG] | None = Field(default=None, max_length=LIST_MAX, description="Arguments of an added container.")
    env: list[EnvOverlay] = Field(
        default_factory=list, max_length=LIST_MAX, description="Environment variables (value or valueFrom), appended."
    )
    env_from: list[dict[str, Any]] = Field(
        default_factory=list, alias="envFrom", max_length=64, description="configMapRef/secretRef sources."
    )
    volume_mounts: list[MountOverlay] = Field(
        default_factory=list, alias="volumeMounts", max_length=64, description="Volume mounts, appended."
    )
    security_context: dict[str, Any] = Field(
        default_factory=dict, alias="securityContext", description="Merged over Foresail's restricted defaults (triton)."
    )
    resources: dict[str, Any] | None = Field(default=None, description="Resources of an added container.")
    ports: list[dict[str, Any]] = Field(default_factory=list, max_length=64, description="Ports of an added container.")

    @model_validator(mode="after")
    def _rules(self) -> ContainerOverlay:
        if self.name == TRITON_CONTAINER:
            owned = [f for f in ("image", "command", "args", "resources") if getattr(self, f) is not None]
            if owned:
                raise ValueError(f"the triton container's {', '.join(owned)} come from spec.triton")
        elif self.image is None:
            raise ValueError(f"container {self.name!r}: an added container needs an image")
        return self


class SecretRef(SpecModel):
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="A Secret in the same namespace.")


class PodSpecOverlay(SpecModel):
    service_account_name: str | None = Field(
        default=None, alias="serviceAccountName", max_length=253, pattern=DNS_SUBDOMAIN, description="The pods' service account."
    )
    automount_service_account_token: bool | None = Field(
        default=None, alias="automountServiceAccountToken", description="Mount the service account's token."
    )
    image_pull_secrets: list[SecretRef] = Field(
        default_factory=list, alias="imagePullSecrets", max_length=32, description="Secrets to pull images with."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector", description="Node labels the pods need.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, max_length=64, description=f"Appended to Foresail's ({OBJECTS})."
    )
    affinity: dict[str, Any] = Field(default_factory=dict, description=f"Merged with Foresail's anti-affinity ({OBJECTS}).")
    topology_spread_constraints: list[dict[str, Any]] = Field(
        default_factory=list, alias="topologySpreadConstraints", max_length=16, description=f"Topology spread ({OBJECTS})."
    )
    security_context: dict[str, Any] = Field(
        default_factory=dict, alias="securityContext", description="Merged over Foresail's restricted pod security context."
    )
    volumes: list[VolumeOverlay] = Field(default_factory=list, max_length=64, description="Volumes, appended.")
    containers: list[ContainerOverlay] = Field(
        default_factory=list, max_length=16, description="triton's additions, or containers to add."
    )
    runtime_class_name: str | None = Field(default=None, alias="runtimeClassName", max_length=253, description="RuntimeClass.")
    scheduler_name: str | None = Field(default=None, alias="schedulerName", max_length=253, description="Scheduler.")


class PodMetaOverlay(SpecModel):
    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.labels) || self.labels.all(k, !k.startsWith('foresail.dev/') && !k.startsWith('app.kubernetes.io/'))",
                    "message": "labels under foresail.dev/ and app.kubernetes.io/ are Foresail's",
                }
            ]
        },
    )
    labels: dict[str, str] = Field(default_factory=dict, max_length=64, description="Added to the pods' labels.")
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64, description="Added to the pods' annotations.")

    @model_validator(mode="after")
    def _labels(self) -> PodMetaOverlay:
        taken = [k for k in self.labels if k.startswith(RESERVED_LABEL_PREFIXES)]
        if taken:
            raise ValueError(f"labels {taken} are Foresail's (foresail.dev/, app.kubernetes.io/)")
        return self


class PodTemplateOverlay(SpecModel):
    """Additions to the Triton pod template (see the module's documentation)."""

    metadata: PodMetaOverlay = Field(default_factory=PodMetaOverlay, description="Labels and annotations.")
    spec: PodSpecOverlay = Field(default_factory=PodSpecOverlay, description="Pod spec additions.")
